// ImageNet as it comes: a folder per class (train/n01440764/*.JPEG), and a val set either the
// same way (as valprep.sh leaves it) or flat with a labels file (Kaggle's LOC_val_solution.csv,
// or plain "filename wnid" lines). Classes are the sorted folder names of the training set —
// the standard 0..999 order — unless a checkpoint fixes them.
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "alexnet/data.h"
#include "alexnet/error.h"
#include "alexnet/image.h"

namespace fs = std::filesystem;

namespace alexnet {
namespace {

bool hidden(const fs::path& p) {
  return p.filename().string().starts_with(".");
}

// Sorted names of the subdirectories of `dir` (the class folders).
std::vector<std::string> subdirectories(const std::string& dir, const std::string& key) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw Error(key + " = '" + dir + "' is not a directory");
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_directory() && !hidden(e.path())) names.push_back(e.path().filename().string());
  if (ec) throw Error("cannot list " + key + " = '" + dir + "': " + ec.message());
  std::sort(names.begin(), names.end());
  return names;
}

// Regular files of `dir`, sorted by name so that the sample order is the same everywhere.
std::vector<std::string> files_in(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (!e.is_directory() && !hidden(e.path())) names.push_back(e.path().filename().string());
  if (ec) throw Error("cannot list '" + dir.string() + "': " + ec.message());
  std::sort(names.begin(), names.end());
  return names;
}

std::vector<std::string> read_lines(const std::string& path, const std::string& key) {
  std::ifstream in(path);
  if (!in) throw Error("cannot read " + key + " = '" + path + "'");
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(line);
  }
  return lines;
}

std::string stem(const std::string& file) {
  return fs::path(file).stem().string();
}

// Val labels by file stem, from LOC_val_solution.csv ("ImageId,PredictionString" where the label
// is the first wnid of the prediction string) or from "filename wnid" lines.
std::map<std::string, std::string> read_val_labels(const std::string& path) {
  std::map<std::string, std::string> labels;
  const auto lines = read_lines(path, "data.val_labels");
  const bool kaggle = !lines.empty() && lines[0].starts_with("ImageId,");
  for (size_t i = kaggle ? 1 : 0; i < lines.size(); ++i) {
    const std::string& line = lines[i];
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    std::string file, wnid;
    if (kaggle) {
      const auto comma = line.find(',');
      if (comma == std::string::npos) {
        throw Error("data.val_labels '" + path + "' line " + std::to_string(i + 1) +
                    ": expected 'ImageId,PredictionString'");
      }
      file = line.substr(0, comma);
      std::istringstream(line.substr(comma + 1)) >> wnid;
    } else {
      std::istringstream(line) >> file >> wnid;
    }
    if (file.empty() || wnid.empty())
      throw Error("data.val_labels '" + path + "' line " + std::to_string(i + 1) +
                  ": expected a file name and a wnid, got '" + line + "'");
    labels[stem(file)] = wnid;
  }
  return labels;
}

class FolderSource final : public DataSource {
 public:
  FolderSource(const Config& c, Split split, const std::vector<std::string>* fixed_classes)
      : size_(c.data.image_size), dct_scaling_(c.data.dct_scaling) {
    const std::string key = split == Split::train ? "data.train" : "data.val";
    const std::string root = split == Split::train ? c.data.train : c.data.val;
    if (root.empty()) throw Error(key + " is not set (a folder of images)");
    if (fixed_classes) {
      classes_ = *fixed_classes;
    } else {
      if (c.data.train.empty()) throw Error("data.train is not set (a folder per class)");
      classes_ = subdirectories(c.data.train, "data.train");
      if (classes_.empty()) throw Error("data.train = '" + c.data.train + "' has no class folders");
    }
    std::map<std::string, int32_t> label_of;
    for (size_t i = 0; i < classes_.size(); ++i) label_of[classes_[i]] = static_cast<int32_t>(i);
    names_ = classes_;
    if (!c.data.class_names.empty()) read_class_names(c.data.class_names);

    auto label_for = [&](const std::string& wnid, const fs::path& file) {
      auto it = label_of.find(wnid);
      if (it == label_of.end())
        throw Error("'" + file.string() + "' is labelled '" + wnid + "', which is not one of the " +
                    std::to_string(classes_.size()) + " training classes");
      return it->second;
    };
    const bool flat = split == Split::val && !c.data.val_labels.empty();
    if (!flat) {
      for (const auto& wnid : subdirectories(root, key)) {
        const fs::path dir = fs::path(root) / wnid;
        const auto files = files_in(dir);
        if (files.empty()) continue;
        const int32_t label = label_for(wnid, dir / files.front());
        const auto d = static_cast<uint32_t>(dirs_.size());
        dirs_.push_back(dir.string());
        for (const auto& f : files) samples_.push_back({d, label, f});
      }
      if (samples_.empty() && split == Split::val && !fs::is_empty(root))
        throw Error("data.val = '" + root +
                    "' has no class folders; for a flat val folder set data.val_labels to "
                    "LOC_val_solution.csv or a 'filename wnid' file");
    } else {
      const auto labels = read_val_labels(c.data.val_labels);
      dirs_.push_back(root);
      for (const auto& f : files_in(root)) {
        const fs::path file = fs::path(root) / f;
        auto it = labels.find(stem(f));
        if (it == labels.end())
          throw Error("'" + file.string() + "' has no label in data.val_labels = '" +
                      c.data.val_labels + "'");
        samples_.push_back({0, label_for(it->second, file), f});
      }
    }
    if (samples_.empty()) throw Error(key + " = '" + root + "' holds no images");
  }

  int64_t size() const override { return static_cast<int64_t>(samples_.size()); }
  int image_size() const override { return size_; }
  const std::vector<std::string>& classes() const override { return classes_; }
  const std::vector<std::string>& class_names() const override { return names_; }
  std::string describe(int64_t index) const override {
    const Sample& s = samples_[static_cast<size_t>(index)];
    return (fs::path(dirs_[s.dir]) / s.file).string();
  }

  int32_t load(int64_t index, uint8_t* image) const override {
    const std::string path = describe(index);
    // Each thread's buffers for the file, the decoded and the scaled image, kept from image to
    // image: allocating them afresh cost a tenth of the time in zeroed pages.
    thread_local Scratch scratch;
    scratch.release_if_huge();  // what the last image left
    try {
      read_file(path, scratch.bytes);
      decode_image(scratch.bytes.data(), scratch.bytes.size(), dct_scaling_ ? size_ : 0,
                   scratch.decoded);
      resize_shorter_and_center_crop(scratch.decoded, size_, image, scratch.scaled);
    } catch (const BadImage&) {
      throw;
    } catch (const Error& e) {  // unreadable: skipped like an undecodable file
      throw BadImage(e.what());
    }
    return samples_[static_cast<size_t>(index)].label;
  }

 private:
  struct Scratch {
    std::vector<uint8_t> bytes, scaled;
    Image decoded;
    // A rare huge photo's buffers are not kept for the rest of the run (ImageNet's largest
    // decode to ~100 MB): above 4096 x 4096 RGB they are freed after use.
    void release_if_huge() {
      constexpr size_t kKeep = size_t{4096} * 4096 * 3;
      for (auto* v : {&bytes, &scaled, &decoded.rgb})
        if (v->capacity() > kKeep) *v = std::vector<uint8_t>();
    }
  };
  struct Sample {
    uint32_t dir;
    int32_t label;
    std::string file;
  };

  // "n01440764 tench, Tinca tinca" (LOC_synset_mapping.txt) or the same with a tab (words.txt).
  void read_class_names(const std::string& path) {
    std::map<std::string, std::string> names;
    for (const auto& line : read_lines(path, "data.class_names")) {
      const auto space = line.find_first_of(" \t");
      if (space == std::string::npos) continue;
      const auto start = line.find_first_not_of(" \t", space);
      if (start != std::string::npos) names[line.substr(0, space)] = line.substr(start);
    }
    for (size_t i = 0; i < classes_.size(); ++i) {
      auto it = names.find(classes_[i]);
      if (it != names.end()) names_[i] = it->second;
    }
  }

  int size_;
  bool dct_scaling_;
  std::vector<std::string> classes_, names_, dirs_;
  std::vector<Sample> samples_;
};

}  // namespace

std::unique_ptr<DataSource> make_folder_source(const Config& config, Split split,
                                               const std::vector<std::string>* classes) {
  return std::make_unique<FolderSource>(config, split, classes);
}

}  // namespace alexnet
