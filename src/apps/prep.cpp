// alexnet-prep: dataset tools. Each works on the dataset a config names (data.train / data.val)
// and shows a progress bar.
//   stats     the mean image and RGB PCA over the training set -> safetensors (data.stats)
//   verify    list every file that cannot be used, without training
//   pack      a split -> packed shards (already resized, JPEG or raw) for the fast loader
//   idx2jpeg  an IDX dataset (MNIST, Fashion-MNIST) -> a class-per-folder JPEG tree
//   synth-jpeg  a class-per-folder tree of photo-like JPEGs with ImageNet's sizes and kinds
//   plot      a run directory's curves.png and filters.png, redrawn from metrics.csv and a
//             checkpoint (older runs, runs from other machines)
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <mutex>

#include "alexnet/checkpoint.h"
#include "alexnet/data.h"
#include "alexnet/error.h"
#include "alexnet/image.h"
#include "alexnet/packed.h"
#include "alexnet/plots.h"
#include "alexnet/synth_jpeg.h"
#include "alexnet/thread_pool.h"
#include "src/apps/common.h"
#include "src/apps/progress.h"
#include "src/train/run_dir.h"

namespace fs = std::filesystem;

namespace alexnet {
namespace {

// curves.png from RUN_DIR/metrics.csv, filters.png from conv1.weight of the checkpoint (by
// default the newest in RUN_DIR/checkpoints), both into `out` (default RUN_DIR).
int run_plot(const std::string& run_dir, const std::string& checkpoint, std::string out) {
  RunDir dir{run_dir};
  if (!fs::is_directory(run_dir)) throw Error("plot: '" + run_dir + "' is not a directory");
  const std::string path = checkpoint.empty() ? newest_checkpoint(dir) : checkpoint;
  if (path.empty())
    throw Error("plot: no checkpoint in '" + dir.checkpoints() + "' (give one with --checkpoint)");
  const Checkpoint ckpt = read_checkpoint(path, {});
  if (out.empty()) out = run_dir;
  fs::create_directories(out);
  const RunDir to{out};
  write_curves_png(dir.metrics(), ckpt.config.name + " (" + run_dir + ")", to.curves());
  const auto* w = ckpt.file.find("conv1.weight");
  if (w == nullptr) throw Error("plot: '" + path + "' holds no conv1.weight");
  if (w->dtype != "F32") throw Error("plot: conv1.weight in '" + path + "' is not F32");
  const auto& m = ckpt.config.model;
  write_filters_png(w->data, m.conv1.filters, m.conv1.kernel, m.towers, to.filters());
  std::printf("%s\n%s (conv1 of %s)\n", to.curves().c_str(), to.filters().c_str(), path.c_str());
  return 0;
}

void print_bad(const std::vector<BadSample>& bad) {
  for (const auto& b : bad) std::printf("  %s: %s\n", b.path.c_str(), b.reason.c_str());
}

int run_stats(const CommonOptions& o, int64_t images) {
  if (o.out.empty()) throw Error("stats: --out FILE.safetensors is required");
  const Config c = load_config(o.config_path, o.sets);
  const auto source = make_source(c, Split::train);
  ProgressBar bar("stats");
  const DataStats st = compute_stats(*source, images > 0 ? images : source->size(), c.data.workers,
                                     [&](int64_t d, int64_t t) { bar.update(d, t); });
  save_stats(o.out, st);
  std::printf("stats of %lld images (%zu skipped) -> %s\n", static_cast<long long>(st.images),
              st.skipped.size(), o.out.c_str());
  print_bad(st.skipped);
  std::printf("mean RGB %.2f %.2f %.2f; PCA eigenvalues %.2f %.2f %.2f\n", st.mean[0],
              st.mean[st.mean.size() / 3], st.mean[2 * st.mean.size() / 3], st.eigval[0],
              st.eigval[1], st.eigval[2]);
  return 0;
}

int run_verify(const CommonOptions& o, const std::string& split) {
  const Config c = load_config(o.config_path, o.sets);
  int64_t total = 0, problems = 0;
  std::unique_ptr<DataSource> train;
  for (const Split s : {Split::train, Split::val}) {
    if ((split == "train" && s != Split::train) || (split == "val" && s != Split::val)) continue;
    if (s == Split::train || !train) train = make_source(c, Split::train);
    const auto source = s == Split::train ? nullptr : make_source(c, s, &train->classes());
    const DataSource& data = s == Split::train ? *train : *source;
    const int S = data.image_size();
    std::vector<BadSample> bad;
    std::mutex mutex;
    ProgressBar bar(s == Split::train ? "verify train" : "verify val");
    int64_t done = 0;
    // In blocks, so the bar moves and the memory stays small.
    constexpr int64_t kBlock = 512;
    for (int64_t first = 0; first < data.size(); first += kBlock) {
      const int64_t n = std::min(kBlock, data.size() - first);
      parallel_for(n, c.data.workers, [&](int64_t i) {
        std::vector<uint8_t> image(static_cast<size_t>(3) * S * S);
        try {
          data.load(first + i, image.data());
        } catch (const BadImage& e) {
          std::lock_guard lock(mutex);
          bad.push_back({first + i, data.describe(first + i), e.what()});
        }
      });
      done += n;
      bar.update(done, data.size());
    }
    std::sort(bad.begin(), bad.end(),
              [](const BadSample& a, const BadSample& b) { return a.index < b.index; });
    std::printf("%s: %lld images, %zu cannot be used\n", s == Split::train ? "train" : "val",
                static_cast<long long>(data.size()), bad.size());
    print_bad(bad);
    total += data.size();
    problems += static_cast<int64_t>(bad.size());
  }
  std::printf("%lld images checked, %lld problems\n", static_cast<long long>(total),
              static_cast<long long>(problems));
  return problems == 0 ? 0 : 1;
}

int run_pack(const CommonOptions& o, const std::string& split, PackOptions p) {
  if (o.out.empty()) throw Error("pack: --out DIR is required");
  const Config c = load_config(o.config_path, o.sets);
  const auto train = make_source(c, Split::train);
  const auto val = split == "val" ? make_source(c, Split::val, &train->classes()) : nullptr;
  const DataSource& data = split == "val" ? *val : *train;
  p.out_dir = o.out;
  p.workers = c.data.workers;
  ProgressBar bar("pack " + split);
  const PackReport r = pack_source(data, p, [&](int64_t d, int64_t t) { bar.update(d, t); });
  std::printf("packed %lld images into %s (%lld from an earlier run), %zu skipped\n",
              static_cast<long long>(r.written), p.out_dir.c_str(),
              static_cast<long long>(r.reused), r.bad.size());
  print_bad(r.bad);
  return 0;
}

// ---------------------------------------------------------------------------- IDX files
// The format of MNIST and Fashion-MNIST: a big-endian magic (0x0803 images, 0x0801 labels),
// the dimensions as big-endian u32, then the bytes. Read through zlib, so .gz works too.
std::vector<uint8_t> read_gz(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) throw Error("cannot read '" + path + "'");
  std::vector<uint8_t> out;
  uint8_t buf[1 << 16];
  int n;
  while ((n = gzread(f, buf, sizeof buf)) > 0) out.insert(out.end(), buf, buf + n);
  const bool failed = n < 0;
  gzclose(f);
  if (failed) throw Error("'" + path + "' is not a readable (gzip) file");
  return out;
}

uint32_t big_endian(const std::vector<uint8_t>& b, size_t at) {
  return uint32_t{b[at]} << 24 | uint32_t{b[at + 1]} << 16 | uint32_t{b[at + 2]} << 8 | b[at + 3];
}

int run_idx2jpeg(const std::string& images_path, const std::string& labels_path,
                 const std::string& out, const std::string& names, int quality, int workers) {
  const auto images = read_gz(images_path), labels = read_gz(labels_path);
  if (images.size() < 16 || big_endian(images, 0) != 0x803)
    throw Error("'" + images_path + "' is not an IDX image file (magic 0x00000803)");
  if (labels.size() < 8 || big_endian(labels, 0) != 0x801)
    throw Error("'" + labels_path + "' is not an IDX label file (magic 0x00000801)");
  const int64_t n = big_endian(images, 4), rows = big_endian(images, 8),
                cols = big_endian(images, 12);
  if (big_endian(labels, 4) != n || images.size() != static_cast<size_t>(16 + n * rows * cols) ||
      labels.size() != static_cast<size_t>(8 + n))
    throw Error("'" + images_path + "' and '" + labels_path + "' do not describe the same " +
                "images (counts or sizes differ)");
  // Class folders sort in label order: "0-t-shirt", "1-trouser", ...
  std::vector<std::string> folders;
  std::string rest = names;
  for (int k = 0; !rest.empty() || k == 0; ++k) {
    const auto comma = rest.find(',');
    folders.push_back(std::to_string(k) + "-" + rest.substr(0, comma));
    rest = comma == std::string::npos ? "" : rest.substr(comma + 1);
  }
  int max_label = 0;
  for (int64_t i = 0; i < n; ++i) max_label = std::max<int>(max_label, labels[8 + i]);
  if (max_label > 9 && names.empty()) throw Error("idx2jpeg: more than 10 labels need --names");
  while (static_cast<int>(folders.size()) <= max_label)
    folders.push_back(std::to_string(folders.size()));
  if (names.empty())
    for (size_t k = 0; k < folders.size(); ++k) folders[k] = std::to_string(k);
  for (const auto& f : folders) {
    std::error_code ec;
    fs::create_directories(fs::path(out) / f, ec);
    if (ec) throw Error("cannot create '" + (fs::path(out) / f).string() + "': " + ec.message());
  }
  ProgressBar bar("idx2jpeg");
  std::mutex mutex;
  int64_t done = 0;
  std::string failed;  // thrown after the threads are joined
  parallel_for(n, workers, [&](int64_t i) {
    Image img{static_cast<int>(cols), static_cast<int>(rows),
              std::vector<uint8_t>(static_cast<size_t>(rows * cols * 3))};
    const uint8_t* px = images.data() + 16 + i * rows * cols;
    for (int64_t p = 0; p < rows * cols; ++p)
      for (int c = 0; c < 3; ++c) img.rgb[static_cast<size_t>(p * 3 + c)] = px[p];
    const auto jpeg = encode_jpeg(img, quality);
    char name[32];
    std::snprintf(name, sizeof name, "%06lld.JPEG", static_cast<long long>(i));
    const fs::path path = fs::path(out) / folders[labels[8 + i]] / name;
    FILE* f = std::fopen(path.c_str(), "wb");
    const bool ok = f && std::fwrite(jpeg.data(), 1, jpeg.size(), f) == jpeg.size();
    if (f) std::fclose(f);
    std::lock_guard lock(mutex);
    if (!ok && failed.empty()) failed = path.string();
    bar.update(++done, n);
  });
  if (!failed.empty()) throw Error("cannot write '" + failed + "'");
  std::printf("%lld images (%lldx%lld) in %zu classes -> %s\n", static_cast<long long>(n),
              static_cast<long long>(cols), static_cast<long long>(rows), folders.size(),
              out.c_str());
  return 0;
}

}  // namespace
}  // namespace alexnet

int main(int argc, char** argv) {
  using namespace alexnet;
  CLI::App app{"Dataset tools for alexnet: stats, verify, pack, idx2jpeg.", "alexnet-prep"};
  app.require_subcommand(1);
  CommonOptions common;
  int64_t images = 0;
  auto* stats = app.add_subcommand("stats", "mean image and RGB PCA of the training set");
  add_common_options(*stats, common, "the statistics file to write (.safetensors)");
  stats->add_option("--images", images, "use this many images spread over the set (default all)");

  std::string split = "both";
  auto* verify = app.add_subcommand("verify", "list every image that cannot be used");
  add_common_options(*verify, common, "(unused)");
  verify->add_option("--split", split, "train, val or both")
      ->check(CLI::IsMember({"train", "val", "both"}))
      ->capture_default_str();

  PackOptions pack_options;
  std::string pack_split = "train";
  auto* pack = app.add_subcommand("pack", "a split -> packed shards for the fast loader");
  add_common_options(*pack, common, "the packed directory to write");
  pack->add_option("--split", pack_split, "train or val")
      ->check(CLI::IsMember({"train", "val"}))
      ->capture_default_str();
  pack->add_option("--quality", pack_options.quality, "JPEG quality")
      ->check(CLI::Range(1, 100))
      ->capture_default_str();
  pack->add_flag("--raw", pack_options.raw, "store raw pixels instead of JPEG");
  std::string pack_order = "shuffled";
  pack->add_option("--order", pack_order,
                   "shuffled: a fixed random order, so that consecutive images are a random "
                   "sample (data.order: quasi_random needs it); source: the source's order")
      ->check(CLI::IsMember({"shuffled", "source"}))
      ->capture_default_str();
  pack->add_option("--shard-images", pack_options.images_per_shard, "images per shard file")
      ->check(CLI::Range(int64_t{1}, int64_t{1'000'000'000}))
      ->capture_default_str();

  std::string idx_images, idx_labels, idx_out, idx_names;
  int idx_quality = 95, idx_workers = 2;
  auto* idx = app.add_subcommand("idx2jpeg", "IDX files (MNIST format) -> class-per-folder JPEGs");
  idx->add_option("--images", idx_images, "images file (.gz or not)")->required();
  idx->add_option("--labels", idx_labels, "labels file (.gz or not)")->required();
  idx->add_option("--out", idx_out, "output directory")->required();
  idx->add_option("--names", idx_names, "class names, comma-separated, in label order");
  idx->add_option("--quality", idx_quality, "JPEG quality")->capture_default_str();
  idx->add_option("--workers", idx_workers, "threads")->capture_default_str();

  SynthJpegOptions synth;
  auto* synth_jpeg = app.add_subcommand(
      "synth-jpeg",
      "a class-per-folder tree of photo-like JPEGs with ImageNet's sizes and kinds (shorter side "
      "333-500, a tenth 1000-2000; a few progressive, CMYK and grayscale): input-pipeline work "
      "without ImageNet");
  synth_jpeg->add_option("--out", synth.out, "the tree's root")->required();
  synth_jpeg->add_option("--classes", synth.classes, "class folders")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  synth_jpeg->add_option("--images-per-class", synth.images_per_class, "images in each folder")
      ->check(CLI::Range(1, 10000000))
      ->capture_default_str();
  synth_jpeg->add_option("--seed", synth.seed, "the same seed writes the same files")
      ->capture_default_str();
  synth_jpeg->add_option("--workers", synth.workers, "threads")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();

  std::string plot_dir, plot_checkpoint, plot_out;
  auto* plot = app.add_subcommand(
      "plot", "redraw a run's curves.png and filters.png from metrics.csv and a checkpoint");
  plot->add_option("run_dir", plot_dir, "the run directory (holds metrics.csv)")->required();
  plot->add_option("--checkpoint", plot_checkpoint,
                   "the checkpoint whose conv1 to draw (default: the newest in the run)");
  plot->add_option("--out", plot_out,
                   "where to write the two pictures (default: the run directory)");

  return run_app(app, argc, argv, [&] {
    if (*plot) return run_plot(plot_dir, plot_checkpoint, plot_out);
    if (*stats) return run_stats(common, images);
    if (*verify) return run_verify(common, split);
    if (*pack) {
      pack_options.shuffle = pack_order == "shuffled";
      return run_pack(common, pack_split, pack_options);
    }
    if (*synth_jpeg) {
      const SynthJpegSummary s = write_synthetic_jpeg_tree(synth);
      std::printf(
          "%s: %lld images in %d classes, %.1f MB (mean %.0f KB); %lld progressive, %lld "
          "CMYK, %lld grayscale, %lld with the shorter side >= 1000\n",
          synth.out.c_str(), static_cast<long long>(s.images), synth.classes,
          static_cast<double>(s.bytes) / 1e6,
          static_cast<double>(s.bytes) / 1e3 / static_cast<double>(s.images),
          static_cast<long long>(s.progressive), static_cast<long long>(s.cmyk),
          static_cast<long long>(s.grayscale), static_cast<long long>(s.large));
      return 0;
    }
    return run_idx2jpeg(idx_images, idx_labels, idx_out, idx_names, idx_quality, idx_workers);
  });
}
