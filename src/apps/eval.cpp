// alexnet-eval: top-1 / top-5 error of a checkpoint on a split. The checkpoint carries its
// config, input statistics and classes, so it needs nothing else but the data.
#include <cstdio>
#include <filesystem>

#include "alexnet/checkpoint.h"
#include "alexnet/error.h"
#include "alexnet/json.h"
#include "alexnet/train.h"
#include "src/apps/common.h"
#include "src/train/run_dir.h"

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
  app.add_flag("--json", json, "print the result as JSON");
  return alexnet::run_app(app, argc, argv, [&] {
    using namespace alexnet;
    auto ckpt = read_checkpoint(checkpoint, common.sets);
    Config config =
        common.config_path.empty() ? ckpt.config : load_config(common.config_path, common.sets);
    check_device(common.device, "--device");
    const auto data = make_source(config, split == "val" ? Split::val : Split::train);
    Net net(config, batch > 0 ? batch : config.data.batch_size);
    load_weights(ckpt, net, false);
    const auto r = evaluate(net, *data, ckpt.stats, config.data.scale, config.data.workers);
    char json_text[512], plain[512];
    std::snprintf(json_text, sizeof json_text,
                  "{\"checkpoint\": %s, \"split\": \"%s\", \"images\": %lld, \"loss\": "
                  "%.6f, \"top1_error\": %.6f, \"top5_error\": %.6f}\n",
                  json_quote(checkpoint).c_str(), split.c_str(), (long long)r.images, r.loss,
                  r.top1_error, r.top5_error);
    std::snprintf(plain, sizeof plain,
                  "%s on %s (%lld images): top-1 error %.4f  top-5 error %.4f  loss %.4f\n",
                  checkpoint.c_str(), split.c_str(), (long long)r.images, r.top1_error,
                  r.top5_error, r.loss);
    std::fputs(json ? json_text : plain, stdout);
    if (!common.out.empty()) {
      std::error_code ec;
      std::filesystem::create_directories(common.out, ec);
      write_text_atomic(common.out + "/eval.json", json_text);
    }
    return 0;
  });
}
