// alexnet-eval: top-1 / top-5 error of a checkpoint on a split. The checkpoint carries its
// config, input statistics and classes, so it needs nothing else but the data.
#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "alexnet/checkpoint.h"
#include "alexnet/error.h"
#include "alexnet/file_io.h"
#include "alexnet/train.h"
#include "src/apps/common.h"

int main(int argc, char** argv) {
  CLI::App app{"Evaluate an AlexNet checkpoint: top-1 and top-5 error.", "alexnet-eval"};
  alexnet::CommonOptions common;
  add_common_options(app, common, "also write the result to DIR/eval.json");
  std::string checkpoint, split = "val";
  bool json = false;
  int batch = 0;
  app.add_option("--checkpoint", checkpoint, "checkpoint (.safetensors)")->required();
  app.add_option("--split", split, "val or train")
      ->check(CLI::IsMember({"val", "train"}))
      ->capture_default_str();
  app.add_option("--batch", batch, "images per forward pass (default data.batch_size)");
  int crops = 1;
  app.add_option("--crops", crops,
                 "1: the centre crop; 10: the softmax averaged over the four corner crops, the "
                 "centre and their mirrors (the paper's test-time ten crops)")
      ->check(CLI::IsMember({1, 10}))
      ->capture_default_str();
  app.add_flag("--json", json, "print the result as JSON (with the per-class top-1 error)");
  return alexnet::run_app(app, argc, argv, [&] {
    using namespace alexnet;
    auto ckpt = read_checkpoint(checkpoint, common.sets);
    Config config =
        common.config_path.empty() ? ckpt.config : load_config(common.config_path, common.sets);
    // --device alone: the checkpoint's model.devices says where it was trained, not where to
    // evaluate it.
    const Device device = resolve_device(common.device, "--device");
    const auto data =
        make_source(config, split == "val" ? Split::val : Split::train, &ckpt.classes);
    configure_devices({device}, config);
    Net net(config, batch > 0 ? batch : config.data.batch_size, DType::f32, device);
    load_weights(ckpt, net, false);
    const auto r = evaluate(net, *data, ckpt.stats, config, crops);
    for (const auto& bad : r.skipped)
      std::fprintf(stderr, "skipped %s: %s\n", bad.path.c_str(), bad.reason.c_str());

    // Numbers as computed: nlohmann writes the shortest text that reads back to the same double.
    nlohmann::ordered_json report = {{"checkpoint", checkpoint},
                                     {"split", split},
                                     {"crops", crops},
                                     {"images", r.images},
                                     {"skipped", r.skipped.size()},
                                     {"loss", r.loss},
                                     {"top1_error", r.top1_error},
                                     {"top5_error", r.top5_error}};
    nlohmann::ordered_json& per_class = report["per_class"] = nlohmann::ordered_json::array();
    for (size_t c = 0; c < r.class_images.size(); ++c) {
      const int64_t n = r.class_images[c];
      per_class.push_back(
          {{"class", ckpt.classes[c]},
           {"name", c < data->class_names().size() ? data->class_names()[c] : ckpt.classes[c]},
           {"images", n},
           {"top1_error",
            n ? static_cast<double>(r.class_top1_errors[c]) / static_cast<double>(n) : 0.0}});
    }
    const std::string json_text =
        report.dump(2, ' ', false, nlohmann::ordered_json::error_handler_t::replace) + "\n";
    char plain[1024];
    std::snprintf(plain, sizeof plain,
                  "%s on %s (%lld images, %s): top-1 error %.4f  top-5 error %.4f  loss %.4f%s\n",
                  checkpoint.c_str(), split.c_str(), (long long)r.images,
                  crops == 10 ? "ten crops" : "centre crop", r.top1_error, r.top5_error, r.loss,
                  r.skipped.empty() ? "" : "  (some files skipped, see above)");
    std::fputs(json ? json_text.c_str() : plain, stdout);
    if (!common.out.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(common.out, ec);
      write_text_atomic(common.out + "/eval.json", json_text);
    }
    return 0;
  });
}
