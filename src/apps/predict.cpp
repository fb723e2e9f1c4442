// alexnet-predict: the top-k classes of image files, as the checkpoint's network sees them:
// each image resized (shorter side S) and centre-cropped as in evaluation, then the centre
// crop or the average of the paper's ten crops. --sheet draws them as a contact sheet.
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <numeric>

#include "alexnet/checkpoint.h"
#include "alexnet/data.h"
#include "alexnet/error.h"
#include "alexnet/image.h"
#include "alexnet/no_files_source.h"
#include "alexnet/plots.h"
#include "alexnet/train.h"
#include "kernels/augment.cuh"
#include "src/apps/common.h"

namespace alexnet {
namespace {

struct Prediction {
  std::string image, error;
  std::vector<std::pair<int, double>> top;  // class, probability
  cv::Mat thumbnail;                        // the S x S image the net saw (for --sheet)
};

// The class the image's folder names (train/n01440764/x.JPEG, val/3-dress/y.JPEG), or -1.
int folder_class(const std::string& image, const std::vector<std::string>& classes,
                 const std::vector<std::string>& names) {
  const std::string folder = std::filesystem::path(image).parent_path().filename().string();
  for (size_t c = 0; c < classes.size(); ++c)
    if (classes[c] == folder || (c < names.size() && names[c] == folder))
      return static_cast<int>(c);
  return -1;
}

void write_sheet(const std::string& path, const std::vector<Prediction>& predictions,
                 const Checkpoint& ckpt) {
  std::vector<SheetEntry> entries;
  for (const auto& p : predictions) {
    if (!p.error.empty()) continue;
    SheetEntry e;
    e.image = p.thumbnail;
    e.caption = std::filesystem::path(p.image).filename().string();
    const int truth = folder_class(p.image, ckpt.classes, ckpt.class_names);
    e.true_known = truth >= 0;
    if (e.true_known) e.true_name = ckpt.class_names[static_cast<size_t>(truth)];
    for (size_t k = 0; k < p.top.size(); ++k) {
      e.top.emplace_back(ckpt.class_names[static_cast<size_t>(p.top[k].first)], p.top[k].second);
      if (p.top[k].first == truth) e.true_rank = static_cast<int>(k);
    }
    entries.push_back(std::move(e));
  }
  write_png(path, draw_prediction_sheet(entries));
}

}  // namespace
}  // namespace alexnet

int main(int argc, char** argv) {
  using namespace alexnet;
  CLI::App app{"Top-k classes of image files under an AlexNet checkpoint.", "alexnet-predict"};
  CommonOptions common;
  add_common_options(app, common, "(unused)");
  std::string checkpoint;
  std::vector<std::string> images;
  int topk = 5, crops = 1;
  bool json = false;
  app.add_option("--checkpoint", checkpoint, "checkpoint (.safetensors)")->required();
  app.add_option("--topk", topk, "classes to show per image")
      ->check(CLI::Range(1, 1'000'000))
      ->capture_default_str();
  app.add_option("--crops", crops, "1: centre crop; 10: the paper's ten crops, averaged")
      ->check(CLI::IsMember({1, 10}))
      ->capture_default_str();
  app.add_flag("--json", json, "print JSON");
  std::string sheet;
  app.add_option("--sheet", sheet,
                 "also draw a contact sheet (PNG): each image with its top classes and probability "
                 "bars, the true class in green when the image's folder names one");
  app.add_option("images", images, "image files (JPEG or PNG)")->required();
  return run_app(app, argc, argv, [&] {
    const Checkpoint ckpt = read_checkpoint(checkpoint, common.sets);
    const Config& config = ckpt.config;
    // --device alone: the checkpoint's model.devices says where it was trained.
    const Device device = resolve_device(common.device, "--device");
    const int S = ckpt.stats.size, B = std::min<int>(32, static_cast<int>(images.size()));
    configure_devices({device}, config);
    Net net(config, B, DType::f32, device);
    load_weights(ckpt, net, false);
    const NoFiles source(S, ckpt.classes);
    BatchLoader loader(source, ckpt.stats, config, B, device);
    Tensor input({B, 3, net.input_size(), net.input_size()}, DType::f32, device);
    const std::vector<int32_t> labels(static_cast<size_t>(B), 0);  // unknown; only for the loss
    const int K = net.num_classes();
    topk = std::min(topk, K);

    std::vector<Prediction> out;
    for (size_t first = 0; first < images.size(); first += static_cast<size_t>(B)) {
      std::vector<size_t> slot_image;  // the images that decoded, in slot order
      for (size_t i = first; i < std::min(images.size(), first + static_cast<size_t>(B)); ++i) {
        out.push_back({images[i], "", {}, {}});
        try {
          const auto bytes = read_file(images[i]);
          // Decoded as the run's training data was (data.dct_scaling).
          const Image img = resize_shorter_and_center_crop(
              decode_image(bytes.data(), bytes.size(), config.data.dct_scaling ? S : 0), S);
          loader.stage(static_cast<int>(slot_image.size()), img.rgb.data());
          if (!sheet.empty())
            out.back().thumbnail =
                cv::Mat(S, S, CV_8UC3, const_cast<uint8_t*>(img.rgb.data())).clone();
          slot_image.push_back(out.size() - 1);
        } catch (const Error& e) {  // BadImage or unreadable: report, go on with the others
          out.back().error = e.what();
        }
      }
      const int n = static_cast<int>(slot_image.size());
      if (n == 0) continue;
      std::vector<double> probs(static_cast<size_t>(n) * K, 0.0);
      for (int k = 0; k < crops; ++k) {
        loader.augment_fixed(
            n, crops == 1 ? center_crop(S, loader.crop()) : kernels::ten_crop(k, S, loader.crop()),
            input);
        net.forward(input, labels.data(), n, false, 0, 0);
        const Tensor host_probs = net.probs().to(Device{});
        const float* p = host_probs.data<float>();
        for (size_t j = 0; j < probs.size(); ++j) probs[j] += double{p[j]} / crops;
      }
      for (int s = 0; s < n; ++s) {
        const double* p = probs.data() + static_cast<size_t>(s) * K;
        std::vector<int> order(static_cast<size_t>(K));
        std::iota(order.begin(), order.end(), 0);
        std::partial_sort(order.begin(), order.begin() + topk, order.end(),
                          [&](int a, int b) { return p[a] > p[b]; });
        auto& pred = out[slot_image[static_cast<size_t>(s)]];
        for (int t = 0; t < topk; ++t)
          pred.top.push_back({order[static_cast<size_t>(t)], p[order[static_cast<size_t>(t)]]});
      }
    }

    int failed = 0;
    // Probabilities as computed: nlohmann writes the shortest text that reads back to the same
    // double (a fixed six decimals lost up to 3e-4 of a small probability).
    nlohmann::ordered_json report = nlohmann::ordered_json::array();
    for (size_t i = 0; i < out.size(); ++i) {
      const auto& p = out[i];
      failed += !p.error.empty();
      if (json) {
        nlohmann::ordered_json entry = {{"image", p.image}};
        if (!p.error.empty()) entry["error"] = p.error;
        nlohmann::ordered_json& top = entry["top"] = nlohmann::ordered_json::array();
        for (const auto& [c, probability] : p.top)
          top.push_back({{"class", ckpt.classes[static_cast<size_t>(c)]},
                         {"name", ckpt.class_names[static_cast<size_t>(c)]},
                         {"probability", probability}});
        report.push_back(std::move(entry));
        continue;
      }
      if (!p.error.empty()) {
        std::fprintf(stderr, "alexnet-predict: %s: %s\n", p.image.c_str(), p.error.c_str());
        continue;
      }
      std::printf("%s\n", p.image.c_str());
      for (const auto& [c, prob] : p.top)
        std::printf("  %6.2f%%  %-12s %s\n", 100 * prob,
                    ckpt.classes[static_cast<size_t>(c)].c_str(),
                    ckpt.class_names[static_cast<size_t>(c)].c_str());
    }
    // A file name that is not UTF-8 is written with U+FFFD in place of the bad bytes.
    if (json)
      std::printf(
          "%s\n",
          report.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace).c_str());
    if (!sheet.empty()) write_sheet(sheet, out, ckpt);
    return failed == 0 ? 0 : 1;
  });
}
