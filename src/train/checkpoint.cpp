#include "alexnet/checkpoint.h"

#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <sstream>

#include "alexnet/error.h"

namespace alexnet {
namespace {

// %.17g: doubles survive the text round trip bit for bit.
std::string exact(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string shape_str(const std::vector<int64_t>& s) {
  std::string out = "[";
  for (size_t i = 0; i < s.size(); ++i) out += (i ? ", " : "") + std::to_string(s[i]);
  return out + "]";
}

std::string join_lines(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += s + "\n";
  return out;
}

}  // namespace

void save_checkpoint(const std::string& path, const Net& net, const Config& config,
                     const TrainState& s, const DataStats& stats,
                     const std::vector<std::string>& classes,
                     const std::vector<std::string>& class_names) {
  if (net.dtype() != DType::f32) throw std::logic_error("checkpoints hold float32 weights");
  const auto tensors = net.whole_tensors();
  std::vector<std::vector<std::byte>> storage;  // keeps gathered data alive for the writer
  std::vector<SafetensorsView> views;
  storage.reserve(2 * tensors.size());
  for (bool momentum : {false, true})
    for (const auto& [name, shape] : tensors) {
      storage.push_back(net.gather_whole(name, momentum));
      views.push_back({momentum ? "momentum." + name : name, "F32", shape, storage.back().data(),
                       storage.back().size()});
    }
  for (auto& v : stats_views(stats)) views.push_back(std::move(v));

  std::map<std::string, std::string> meta;
  meta["format"] = kCheckpointFormat;
  meta["config"] = config_to_yaml(config);
  meta["epoch"] = std::to_string(s.epoch);
  meta["step"] = std::to_string(s.step);
  meta["batch_in_epoch"] = std::to_string(s.batch_in_epoch);
  meta["lr"] = exact(s.lr.lr);
  meta["schedule"] = "plateau_best=" + exact(s.lr.plateau_best) +
                     " bad_epochs=" + std::to_string(s.lr.bad_epochs) +
                     " drops=" + std::to_string(s.lr.drops);
  meta["best_val_top1"] = exact(s.best_val_top1);
  // Every random draw is Philox keyed by (seed, step or epoch, stream, element): the seed and
  // the position are the whole generator state.
  meta["rng"] = "philox4x32-10 seed=" + std::to_string(config.seed) +
                " step=" + std::to_string(s.step) + " epoch=" + std::to_string(s.epoch);
  meta["epoch_progress"] =
      "loss_sum=" + exact(s.epoch_loss_sum) + " top1=" + std::to_string(s.epoch_top1) +
      " top5=" + std::to_string(s.epoch_top5) + " images=" + std::to_string(s.epoch_images) +
      " skipped=" + std::to_string(s.epoch_skipped) + " seconds=" + exact(s.epoch_seconds);
  meta["epoch_data_wait"] = exact(s.epoch_data_wait_seconds);
  meta["classes"] = join_lines(classes);
  meta["class_names"] = join_lines(class_names);
  write_safetensors(path, views, meta);
}

Checkpoint read_checkpoint(const std::string& path, const std::vector<std::string>& overrides) {
  Checkpoint c;
  c.path = path;
  c.file = read_safetensors(path);
  const auto& meta = c.file.metadata;
  auto get = [&](const char* key) -> const std::string& {
    auto it = meta.find(key);
    if (it == meta.end())
      throw Error("checkpoint '" + path + "': metadata has no '" + key +
                  "' (not written by alexnet?)");
    return it->second;
  };
  auto it = meta.find("format");
  if (it == meta.end() || it->second != kCheckpointFormat)
    throw Error("checkpoint '" + path + "': not an alexnet checkpoint (metadata format is '" +
                (it == meta.end() ? std::string("missing") : it->second) + "', expected '" +
                kCheckpointFormat + "')");
  c.config = config_from_yaml(get("config"), path + " (stored config)", overrides);

  auto& s = c.state;
  auto parse = [&](const char* key, const char* fmt, auto*... out) {
    const std::string& text = get(key);
    const int want = static_cast<int>(sizeof...(out));
    if (std::sscanf(text.c_str(), fmt, out...) != want)
      throw Error("checkpoint '" + path + "': cannot parse metadata " + key + " = '" + text + "'");
  };
  int64_t epoch = 0;
  parse("epoch", "%" SCNd64, &epoch);
  s.epoch = static_cast<int>(epoch);
  parse("step", "%" SCNd64, &s.step);
  parse("batch_in_epoch", "%" SCNd64, &s.batch_in_epoch);
  parse("lr", "%lg", &s.lr.lr);
  parse("schedule", "plateau_best=%lg bad_epochs=%d drops=%d", &s.lr.plateau_best, &s.lr.bad_epochs,
        &s.lr.drops);
  parse("best_val_top1", "%lg", &s.best_val_top1);
  parse("epoch_progress",
        "loss_sum=%lg top1=%" SCNd64 " top5=%" SCNd64 " images=%" SCNd64 " skipped=%" SCNd64
        " seconds=%lg",
        &s.epoch_loss_sum, &s.epoch_top1, &s.epoch_top5, &s.epoch_images, &s.epoch_skipped,
        &s.epoch_seconds);
  // Checkpoints written before the data wait was measured have none: 0.
  if (meta.count("epoch_data_wait") != 0)
    parse("epoch_data_wait", "%lg", &s.epoch_data_wait_seconds);

  std::istringstream classes(get("classes"));
  for (std::string line; std::getline(classes, line);) c.classes.push_back(line);
  if (auto names = meta.find("class_names"); names != meta.end()) {
    std::istringstream lines(names->second);
    for (std::string line; std::getline(lines, line);) c.class_names.push_back(line);
  }
  if (c.class_names.size() != c.classes.size()) c.class_names = c.classes;

  c.stats = stats_from(c.file, "checkpoint '" + path + "'");
  return c;
}

void load_weights(const Checkpoint& ckpt, Net& net, bool with_momentum) {
  for (const auto& [name, shape] : net.whole_tensors()) {
    for (bool momentum : {false, true}) {
      if (momentum && !with_momentum) continue;
      const std::string key = momentum ? "momentum." + name : name;
      const auto* t = ckpt.file.find(key);
      if (!t)
        throw Error("checkpoint '" + ckpt.path + "' has no tensor '" + key +
                    "' that the configured network needs");
      if (t->shape != shape || t->dtype != "F32")
        throw Error("checkpoint '" + ckpt.path + "': " + key + " is " + t->dtype + " " +
                    shape_str(t->shape) + " but the configured network needs F32 " +
                    shape_str(shape) + " (does the config match the checkpoint's?)");
      if (net.dtype() == DType::f32) {
        net.scatter_whole(name, momentum, t->data.data());
      } else {  // a double-precision net (tests) from float weights
        std::vector<double> d(t->data.size() / 4);
        const auto* f = reinterpret_cast<const float*>(t->data.data());
        for (size_t i = 0; i < d.size(); ++i) d[i] = f[i];
        net.scatter_whole(name, momentum, d.data());
      }
    }
  }
}

}  // namespace alexnet
