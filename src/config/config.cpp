// Config loading, checking and writing, all driven by one table of keys (key_table()), so a
// key exists in the parser, the unknown-key check, the YAML dump and the docs, or in none.
#include "alexnet/config.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <initializer_list>
#include <limits>
#include <map>
#include <set>
#include <sstream>
#include <string_view>
#include <type_traits>
#include <variant>

#include "alexnet/error.h"
#include "alexnet/op_params.h"

namespace alexnet {
namespace {

using FieldRef = std::variant<int*, int64_t*, uint64_t*, double*, bool*, std::string*,
                              std::vector<std::string>*, std::vector<int>*>;

constexpr double kInf = std::numeric_limits<double>::infinity();

// Where a number (or each element of a list of integers) must lie.
struct Range {
  double min = -kInf;
  double max = kInf;
  bool min_open = false;  // true: min itself is not allowed
  bool max_open = false;
};

constexpr Range kAny{};
constexpr Range kAtLeast0{0};
constexpr Range kAtLeast1{1};
constexpr Range kPositive{0, kInf, true};
constexpr Range kFraction{0, 1, false, true};  // [0, 1)

// Checks beyond a range or a set of choices.
enum class Rule { kNone, kOdd, kNonEmpty, kAscending, kRunName };

struct KeySpec {
  std::string key;
  std::function<FieldRef(Config&)> field;
  Range range{};
  std::vector<std::string> choices{};  // non-empty: the string must be one of these
  Rule rule = Rule::kNone;
  std::string meaning{};
};

#define ALEXNET_FIELD(member) [](Config& c) -> FieldRef { return &c.member; }

void add_conv_keys(std::vector<KeySpec>& k, const std::string& name,
                   ConvLayerConfig Config::Model::*layer) {
  const std::string p = "model." + name;
  k.push_back({.key = p + ".filters",
               .field = [layer](Config& c) -> FieldRef { return &(c.model.*layer).filters; },
               .range = kAtLeast1,
               .meaning = name + ": output maps, whole net (both towers together)"});
  k.push_back({.key = p + ".kernel",
               .field = [layer](Config& c) -> FieldRef { return &(c.model.*layer).kernel; },
               .range = kAtLeast1,
               .meaning = name + ": kernel side"});
  k.push_back({.key = p + ".stride",
               .field = [layer](Config& c) -> FieldRef { return &(c.model.*layer).stride; },
               .range = kAtLeast1,
               .meaning = name + ": stride"});
  k.push_back({.key = p + ".pad",
               .field = [layer](Config& c) -> FieldRef { return &(c.model.*layer).pad; },
               .range = kAtLeast0,
               .meaning = name + ": zero padding on each side"});
}

// The order here is the order of config_to_yaml and of the docs; keys of one section must
// stay together (the dump opens each section once).
std::vector<KeySpec> make_key_table() {
  std::vector<KeySpec> k;
  k.push_back({.key = "name",
               .field = ALEXNET_FIELD(name),
               .rule = Rule::kRunName,
               .meaning = "run name (default: the config file's stem); runs/<name> by default"});
  k.push_back({.key = "seed", .field = ALEXNET_FIELD(seed), .meaning = "seed of every RNG"});

  k.push_back({.key = "data.source",
               .field = ALEXNET_FIELD(data.source),
               .choices = {"folder", "packed", "synthetic"},
               .meaning = "where images come from: a JPEG tree, a packed file, or generated"});
  k.push_back({.key = "data.train",
               .field = ALEXNET_FIELD(data.train),
               .meaning = "training set path (folder / packed sources)"});
  k.push_back({.key = "data.val",
               .field = ALEXNET_FIELD(data.val),
               .meaning = "validation set path (folder / packed sources)"});
  k.push_back({.key = "data.batch_size",
               .field = ALEXNET_FIELD(data.batch_size),
               .range = kAtLeast1,
               .meaning = "images per SGD step, whole net"});
  k.push_back({.key = "data.image_size",
               .field = ALEXNET_FIELD(data.image_size),
               .range = kAtLeast1,
               .meaning =
                   "side S of the stored images (decoded images are resized to it, synthetic "
                   "ones generated at it); crops are taken from S x S"});
  k.push_back({.key = "data.crop",
               .field = ALEXNET_FIELD(data.crop),
               .range = kAtLeast0,
               .meaning = "crop side; 0 = model.input_size"});
  k.push_back({.key = "data.workers",
               .field = ALEXNET_FIELD(data.workers),
               .range = kAtLeast1,
               .meaning = "threads decoding images: a pool for the whole run that takes images "
                          "one at a time, across batches"});
  k.push_back({.key = "data.prefetch",
               .field = ALEXNET_FIELD(data.prefetch),
               .range = kAtLeast1,
               .meaning = "batches decoded ahead of the one training (each a staging buffer: "
                          "pinned host memory on a GPU)"});
  k.push_back({.key = "data.dct_scaling",
               .field = ALEXNET_FIELD(data.dct_scaling),
               .meaning = "decode a JPEG at the smallest scale M/8 (libjpeg-turbo's DCT "
                          "scaling) that keeps its shorter side >= data.image_size, then resize "
                          "as usual: 2-4x fewer pixels decoded for full-size photos, about 2 grey "
                          "levels (mean) from the full decode"});
  k.push_back({.key = "data.order",
               .field = ALEXNET_FIELD(data.order),
               .choices = {"random", "quasi_random"},
               .meaning = "training order of each epoch: random (a uniform permutation, one read "
                          "per image anywhere in the data) or quasi_random (packed sets: chunks of "
                          "consecutive images in random order, images shuffled within a window of "
                          "chunks, each chunk read as one block; for data larger than RAM)"});
  k.push_back({.key = "data.val_labels",
               .field = ALEXNET_FIELD(data.val_labels),
               .meaning = "labels of a flat val folder: Kaggle's LOC_val_solution.csv or "
                          "'filename wnid' lines; empty = data.val has a folder per class"});
  k.push_back({.key = "data.class_names",
               .field = ALEXNET_FIELD(data.class_names),
               .meaning = "human-readable class names: LOC_synset_mapping.txt or words.txt "
                          "('wnid name, ...' lines); empty = the folder names"});
  k.push_back({.key = "data.stats",
               .field = ALEXNET_FIELD(data.stats),
               .meaning = "safetensors with data.mean and data.pca_*; empty = computed at start"});
  k.push_back({.key = "data.scale",
               .field = ALEXNET_FIELD(data.scale),
               .range = kPositive,
               .meaning = "input = (pixel - mean) * scale"});
  k.push_back({.key = "data.quasi_random.chunk",
               .field = ALEXNET_FIELD(data.quasi_random.chunk),
               .range = kAtLeast1,
               .meaning = "quasi_random: consecutive packed images read as one block"});
  k.push_back({.key = "data.quasi_random.window",
               .field = ALEXNET_FIELD(data.quasi_random.window),
               .range = kAtLeast1,
               .meaning = "quasi_random: chunks whose images are shuffled together (window * chunk "
                          "images are in the page cache at once)"});
  k.push_back({.key = "data.synthetic.train_images",
               .field = ALEXNET_FIELD(data.synthetic.train_images),
               .range = kAtLeast1,
               .meaning = "synthetic source: training images"});
  k.push_back({.key = "data.synthetic.val_images",
               .field = ALEXNET_FIELD(data.synthetic.val_images),
               .range = kAtLeast1,
               .meaning = "synthetic source: validation images"});
  k.push_back({.key = "data.synthetic.noise",
               .field = ALEXNET_FIELD(data.synthetic.noise),
               .range = kAtLeast0,
               .meaning = "synthetic source: std of the per-pixel noise, 0-255 scale"});

  k.push_back({.key = "augment.flip",
               .field = ALEXNET_FIELD(augment.flip),
               .meaning = "random horizontal flips at training"});
  k.push_back({.key = "augment.lighting",
               .field = ALEXNET_FIELD(augment.lighting),
               .range = kAtLeast0,
               .meaning = "std of the PCA lighting alphas; 0 = off"});
  k.push_back({.key = "augment.crop",
               .field = ALEXNET_FIELD(augment.crop),
               .choices = {"random", "center"},
               .meaning = "where training crops are taken"});

  k.push_back({.key = "model.num_classes",
               .field = ALEXNET_FIELD(model.num_classes),
               .range = {2},
               .meaning = "classes of the softmax"});
  k.push_back({.key = "model.towers",
               .field = ALEXNET_FIELD(model.towers),
               .range = {1, 2},
               .meaning = "towers (the paper's two GPUs); each layer's width is split over them"});
  k.push_back({.key = "model.devices",
               .field = ALEXNET_FIELD(model.devices),
               .rule = Rule::kNonEmpty,
               .meaning = "devices the towers run on (auto, cpu, cuda:N, ...)"});
  k.push_back({.key = "model.activation",
               .field = ALEXNET_FIELD(model.activation),
               .choices = {"relu", "tanh"},
               .meaning = "nonlinearity after each conv and hidden fc layer"});
  k.push_back({.key = "model.dropout",
               .field = ALEXNET_FIELD(model.dropout),
               .range = kFraction,
               .meaning = "probability of zeroing an fc6 / fc7 unit at training"});
  k.push_back({.key = "model.input_size",
               .field = ALEXNET_FIELD(model.input_size),
               .range = kAtLeast1,
               .meaning = "side of the network's input (227 makes conv1's arithmetic work)"});
  add_conv_keys(k, "conv1", &Config::Model::conv1);
  add_conv_keys(k, "conv2", &Config::Model::conv2);
  add_conv_keys(k, "conv3", &Config::Model::conv3);
  add_conv_keys(k, "conv4", &Config::Model::conv4);
  add_conv_keys(k, "conv5", &Config::Model::conv5);
  k.push_back({.key = "model.fc6.units",
               .field = ALEXNET_FIELD(model.fc6_units),
               .range = kAtLeast1,
               .meaning = "fc6: units, whole net"});
  k.push_back({.key = "model.fc7.units",
               .field = ALEXNET_FIELD(model.fc7_units),
               .range = kAtLeast1,
               .meaning = "fc7: units, whole net"});
  k.push_back({.key = "model.fc8.units",
               .field = ALEXNET_FIELD(model.fc8_units),
               .range = kAtLeast0,
               .meaning = "fc8: units; 0 = model.num_classes (anything else must equal it)"});
  k.push_back({.key = "model.lrn.size",
               .field = ALEXNET_FIELD(model.lrn.size),
               .range = kAtLeast1,
               .rule = Rule::kOdd,
               .meaning = "LRN: n, adjacent maps in the sum (centred, so odd)"});
  k.push_back({.key = "model.lrn.k",
               .field = ALEXNET_FIELD(model.lrn.k),
               .range = kPositive,
               .meaning = "LRN: k, the additive constant"});
  k.push_back({.key = "model.lrn.alpha",
               .field = ALEXNET_FIELD(model.lrn.alpha),
               .range = kAtLeast0,
               .meaning = "LRN: alpha, the scale of the sum of squares"});
  k.push_back({.key = "model.lrn.beta",
               .field = ALEXNET_FIELD(model.lrn.beta),
               .range = kAtLeast0,
               .meaning = "LRN: beta, the exponent"});
  k.push_back(
      {.key = "model.lrn.alpha_over_n",
       .field = ALEXNET_FIELD(model.lrn.alpha_over_n),
       .meaning = "LRN: divide alpha by n (Caffe / cuda-convnet / PyTorch); the paper does not"});
  k.push_back({.key = "model.pool.size",
               .field = ALEXNET_FIELD(model.pool.size),
               .range = kAtLeast1,
               .meaning = "max-pool window side (after conv1, conv2, conv5)"});
  k.push_back({.key = "model.pool.stride",
               .field = ALEXNET_FIELD(model.pool.stride),
               .range = kAtLeast1,
               .meaning = "max-pool stride (smaller than the window: overlapping)"});
  k.push_back({.key = "model.init.scheme",
               .field = ALEXNET_FIELD(model.init.scheme),
               .choices = {"paper", "kaiming"},
               .meaning = "weight init: paper = N(0, weight_std^2), kaiming = N(0, 2/fan_in)"});
  k.push_back({.key = "model.init.weight_std",
               .field = ALEXNET_FIELD(model.init.weight_std),
               .range = kPositive,
               .meaning = "std of the initial weights (scheme paper)"});
  k.push_back({.key = "model.init.bias_one",
               .field = ALEXNET_FIELD(model.init.bias_one),
               .range = kAny,
               .meaning = "initial bias of conv2, conv4, conv5, fc6, fc7 (the others start at 0)"});

  k.push_back({.key = "optim.lr",
               .field = ALEXNET_FIELD(optim.lr),
               .range = kPositive,
               .meaning = "initial learning rate"});
  k.push_back({.key = "optim.momentum",
               .field = ALEXNET_FIELD(optim.momentum),
               .range = kFraction,
               .meaning = "momentum of the SGD update"});
  k.push_back({.key = "optim.weight_decay",
               .field = ALEXNET_FIELD(optim.weight_decay),
               .range = kAtLeast0,
               .meaning = "weight decay (times lr, in the update)"});
  k.push_back({.key = "optim.decay_biases",
               .field = ALEXNET_FIELD(optim.decay_biases),
               .meaning = "apply weight decay to biases too"});
  k.push_back({.key = "optim.schedule",
               .field = ALEXNET_FIELD(optim.schedule),
               .choices = {"plateau", "step", "poly"},
               .meaning = "when lr drops: when val error stops improving, at fixed epochs, or "
                          "step by step along a polynomial to 0 at the end of train.epochs "
                          "(You et al. 2017, for large batches)"});
  k.push_back({.key = "optim.lr_factor",
               .field = ALEXNET_FIELD(optim.lr_factor),
               .range = {0, 1, true, false},
               .meaning = "lr multiplier at each drop"});
  k.push_back({.key = "optim.patience",
               .field = ALEXNET_FIELD(optim.patience),
               .range = kAtLeast0,
               .meaning = "plateau: epochs without improvement before a drop"});
  k.push_back({.key = "optim.min_delta",
               .field = ALEXNET_FIELD(optim.min_delta),
               .range = kAtLeast0,
               .meaning = "plateau: a smaller fall of val top-1 error is no improvement"});
  k.push_back({.key = "optim.step_epochs",
               .field = ALEXNET_FIELD(optim.step_epochs),
               .range = kAtLeast1,
               .rule = Rule::kAscending,
               .meaning = "step: drop lr after these epochs"});
  k.push_back({.key = "optim.min_lr",
               .field = ALEXNET_FIELD(optim.min_lr),
               .range = kAtLeast0,
               .meaning = "lr never drops below this"});
  k.push_back({.key = "optim.poly_power",
               .field = ALEXNET_FIELD(optim.poly_power),
               .range = kPositive,
               .meaning = "poly: step k of the K after the warm-up runs at "
                          "lr * (1 - k / K)^poly_power, K = train.epochs * steps per epoch - "
                          "warm-up steps (train.max_steps does not change it)"});
  k.push_back({.key = "optim.method",
               .field = ALEXNET_FIELD(optim.method),
               .choices = {"sgd", "lars"},
               .meaning = "the update: the paper's momentum SGD, or LARS (You et al. 2017): each "
                          "weight tensor's step times its trust ratio "
                          "lars_eta * |w| / (|grad| + weight_decay * |w|); biases unscaled"});
  k.push_back({.key = "optim.lars_eta",
               .field = ALEXNET_FIELD(optim.lars_eta),
               .range = kPositive,
               .meaning = "lars: the trust coefficient eta (the effective step of a weight tensor "
                          "is lr * eta * |w| / |grad|, so lr is much larger than SGD's)"});
  k.push_back({.key = "optim.warmup_epochs",
               .field = ALEXNET_FIELD(optim.warmup_epochs),
               .range = kAtLeast0,
               .meaning = "linear warm-up: over this many epochs (fractions allowed; rounded to "
                          "steps) the lr rises step by step toward lr, step k of W at "
                          "lr * (s + (1 - s) * k / W), s = warmup_start; 0 = none. For large "
                          "batches with the linear scaling rule (lr proportional to the batch)"});
  k.push_back({.key = "optim.warmup_start",
               .field = ALEXNET_FIELD(optim.warmup_start),
               .range = Range{0, 1},
               .meaning = "the lr's multiplier where the warm-up starts (Goyal et al.: 1/k for a "
                          "batch k times the base one)"});

  k.push_back({.key = "train.epochs",
               .field = ALEXNET_FIELD(train.epochs),
               .range = kAtLeast1,
               .meaning = "epochs to train"});
  k.push_back({.key = "train.max_steps",
               .field = ALEXNET_FIELD(train.max_steps),
               .range = kAtLeast0,
               .meaning = "stop after this many steps; 0 = no limit"});
  k.push_back({.key = "train.log_every",
               .field = ALEXNET_FIELD(train.log_every),
               .range = kAtLeast1,
               .meaning = "steps between lines in train.log"});

  k.push_back({.key = "checkpoint.every_epochs",
               .field = ALEXNET_FIELD(checkpoint.every_epochs),
               .range = kAtLeast1,
               .meaning = "write checkpoints/epoch-NNN.safetensors every N epochs"});
  k.push_back({.key = "checkpoint.keep",
               .field = ALEXNET_FIELD(checkpoint.keep),
               .range = kAtLeast0,
               .meaning = "epoch-NNN files kept; 0 = all"});

  k.push_back({.key = "cuda.workspace_mb",
               .field = ALEXNET_FIELD(cuda.workspace_mb),
               .range = kAtLeast0,
               .meaning = "GPU: most scratch (MiB) one cuDNN convolution may use"});
  k.push_back({.key = "cuda.benchmark",
               .field = ALEXNET_FIELD(cuda.benchmark),
               .meaning = "GPU: time every cuDNN algorithm once per shape (else its heuristics); "
                          "timing may pick others in a resumed process, so resume is then not "
                          "bit-exact"});
  k.push_back({.key = "cuda.deterministic",
               .field = ALEXNET_FIELD(cuda.deterministic),
               .meaning = "GPU: bit-reproducible cuDNN algorithms only (exact resume)"});
  k.push_back({.key = "cuda.tf32",
               .field = ALEXNET_FIELD(cuda.tf32),
               .meaning = "GPU: TF32 tensor cores for conv and fc (faster, ~1e-3 relative error)"});
  k.push_back({.key = "cuda.exchange_timeout_s",
               .field = ALEXNET_FIELD(cuda.exchange_timeout_s),
               .range = kPositive,
               .meaning = "two GPUs: seconds an NCCL exchange may take before the run is ended"});
  k.push_back({.key = "dist.timeout_s",
               .field = ALEXNET_FIELD(dist.timeout_s),
               .range = kPositive,
               .meaning = "many ranks: seconds a rank waits for the others in a collective before "
                          "it ends the job, naming itself, its host and the collective (longer "
                          "than rank 0 takes to write a checkpoint)"});
  k.push_back({.key = "dist.check_weights_every",
               .field = ALEXNET_FIELD(dist.check_weights_every),
               .range = kAtLeast0,
               .meaning = "many ranks: every this many steps the ranks compare a fingerprint of "
                          "their weights and end the run, naming the ranks, if any differ; 0 = "
                          "never"});
  return k;
}

#undef ALEXNET_FIELD

const std::vector<KeySpec>& key_table() {
  static const std::vector<KeySpec> table = make_key_table();
  return table;
}

const KeySpec* find_key(const std::string& key) {
  for (const KeySpec& s : key_table())
    if (s.key == key) return &s;
  return nullptr;
}

// Sections are the proper prefixes of keys: "model", "model.conv1", ...
const std::set<std::string>& sections() {
  static const std::set<std::string> all = [] {
    std::set<std::string> s;
    for (const KeySpec& spec : key_table())
      for (size_t dot = spec.key.find('.'); dot != std::string::npos;
           dot = spec.key.find('.', dot + 1))
        s.insert(spec.key.substr(0, dot));
    return s;
  }();
  return all;
}

// The field of a const Config: the accessors are written once, for Config&, and only read here.
FieldRef field_of(const KeySpec& spec, const Config& c) {
  return spec.field(const_cast<Config&>(c));
}

// ---------------------------------------------------------------------------- text helpers

std::string last_component(const std::string& key) {
  const size_t dot = key.rfind('.');
  return dot == std::string::npos ? key : key.substr(dot + 1);
}

std::string lower(std::string s) {
  for (char& ch : s) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return s;
}

// Messages are one line, whatever a value holds.
std::string one_line(const std::string& s) {
  std::string out;
  for (char ch : s) {
    if (ch == '\n') {
      out += "\\n";
    } else if (ch == '\r' || ch == '\t') {
      out += ' ';
    } else {
      out += ch;
    }
  }
  if (out.size() > 80) out = out.substr(0, 77) + "...";
  return out;
}

// Built by appending: GCC 12 at -O3 reports a false -Wrestrict for "'" + str + "'".
std::string quote_value(const std::string& s) {
  std::string out = "'";
  out += one_line(s);
  out += '\'';
  return out;
}

std::string describe(const YAML::Node& node) {
  if (node.IsMap()) return "a mapping";
  if (node.IsSequence()) return "a list";
  if (node.IsNull()) return "nothing";
  return quote_value(node.Scalar());
}

// Shortest text that reads back as the same double (std::to_chars guarantees it).
std::string shortest(double v) {
  char buf[64];
  const auto result = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, result.ptr);
}

// As shortest(), but always with a '.' so YAML 1.1 readers (PyYAML) see a float too, and
// 0.0001 rather than 1e-04 where the plain form is not much longer.
std::string yaml_double(double v) {
  std::string s = shortest(v);
  char buf[400];
  const auto fixed = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
  if (fixed.ec == std::errc() && static_cast<size_t>(fixed.ptr - buf) <= s.size() + 3)
    s.assign(buf, fixed.ptr);
  if (!std::isfinite(v) || s.find('.') != std::string::npos) return s;
  const size_t e = s.find('e');
  if (e == std::string::npos) return s + ".0";
  return s.insert(e, ".0");
}

std::string join(const std::vector<std::string>& parts, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) out += (i ? sep : "") + parts[i];
  return out;
}

// Optimal string alignment distance: Levenshtein plus adjacent transpositions ("filtres").
size_t edit_distance(const std::string& a, const std::string& b) {
  std::vector<std::vector<size_t>> d(a.size() + 1, std::vector<size_t>(b.size() + 1));
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

// The closest key or section, or "" when nothing is close enough to be a plausible typo.
// Comparing last components too catches a right name in the wrong section ("train.lr").
std::string closest_key(const std::string& wanted) {
  std::vector<std::string> candidates;
  for (const KeySpec& s : key_table()) candidates.push_back(s.key);
  candidates.insert(candidates.end(), sections().begin(), sections().end());
  const std::string w = lower(wanted);
  const std::string w_last = last_component(w);
  std::string best;
  std::pair<size_t, size_t> best_score{std::numeric_limits<size_t>::max(), 0};
  for (const std::string& cand : candidates) {
    const size_t full = edit_distance(w, cand);
    const size_t last = edit_distance(w_last, last_component(cand)) + 1;
    const std::pair<size_t, size_t> score{std::min(full, last), full};
    if (score < best_score) {
      best_score = score;
      best = cand;
    }
  }
  const size_t limit = std::max<size_t>(3, (w_last.size() + 1) / 2);
  return best_score.first <= limit ? best : "";
}

std::string unknown_key_message(const std::string& key) {
  const std::string suggestion = closest_key(key);
  std::string msg = "unknown key " + quote_value(key);
  if (!suggestion.empty()) msg += " (did you mean '" + suggestion + "'?)";
  return msg;
}

// ---------------------------------------------------------------------------- values

std::string range_text(const Range& r, bool integer) {
  const bool has_min = std::isfinite(r.min), has_max = std::isfinite(r.max);
  if (has_min && has_max) {
    if (integer && !r.min_open && !r.max_open && r.max - r.min == 1)
      return shortest(r.min) + " or " + shortest(r.max);
    return shortest(r.min) + (r.min_open ? " < x " : " <= x ") + (r.max_open ? "< " : "<= ") +
           shortest(r.max);
  }
  if (has_min) return (r.min_open ? "> " : ">= ") + shortest(r.min);
  if (has_max) return (r.max_open ? "< " : "<= ") + shortest(r.max);
  return "any number";
}

bool in_range(double v, const Range& r) {
  if (r.min_open ? !(v > r.min) : !(v >= r.min)) return false;
  if (r.max_open ? !(v < r.max) : !(v <= r.max)) return false;
  return true;
}

template <class T>
constexpr bool kIsList =
    std::is_same_v<T, std::vector<std::string>> || std::is_same_v<T, std::vector<int>>;

std::string type_name(const FieldRef& ref) {
  return std::visit(
      [](auto* field) -> std::string {
        using T = std::remove_pointer_t<decltype(field)>;
        if constexpr (std::is_same_v<T, double>) return "a number";
        if constexpr (std::is_same_v<T, bool>) return "true or false";
        if constexpr (std::is_same_v<T, std::string>) return "a string";
        if constexpr (std::is_same_v<T, std::vector<std::string>>) return "a list of strings";
        if constexpr (std::is_same_v<T, std::vector<int>>) return "a list of integers";
        return "an integer";
      },
      ref);
}

// What the docs and range errors say is allowed.
std::string allowed_text(const KeySpec& spec) {
  if (!spec.choices.empty()) return join(spec.choices, ", ");
  const FieldRef ref = field_of(spec, Config{});
  const bool integer = std::holds_alternative<int*>(ref) || std::holds_alternative<int64_t*>(ref) ||
                       std::holds_alternative<uint64_t*>(ref) ||
                       std::holds_alternative<std::vector<int>*>(ref);
  switch (spec.rule) {
    case Rule::kOdd:
      return "odd, " + range_text(spec.range, true);
    case Rule::kNonEmpty:
      return "a non-empty list";
    case Rule::kAscending:
      return "ascending epochs, each " + range_text(spec.range, true);
    case Rule::kRunName:
      return "non-empty, no '/'";
    case Rule::kNone:
      break;
  }
  if (std::holds_alternative<bool*>(ref)) return "true, false";
  if (std::holds_alternative<std::string*>(ref)) return "any string";
  if (std::holds_alternative<uint64_t*>(ref) && !std::isfinite(spec.range.min))
    return "0 to 18446744073709551615";
  return range_text(spec.range, integer);
}

bool parse_double(std::string_view text, double& out) {
  if (!text.empty() && text[0] == '+') text.remove_prefix(1);
  if (text.empty()) return false;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && ptr == text.data() + text.size();
}

enum class IntParse { kOk, kNotInteger, kOutOfType };

// Whole numbers only; "1e6" and "100.0" count, being whole.
template <class T>
IntParse parse_integer(std::string_view text, T& out) {
  std::string_view t = text;
  if (!t.empty() && t[0] == '+') t.remove_prefix(1);
  const auto [ptr, ec] = std::from_chars(t.data(), t.data() + t.size(), out);
  if (ptr == t.data() + t.size() && !t.empty()) {
    if (ec == std::errc()) return IntParse::kOk;
    if (ec == std::errc::result_out_of_range) return IntParse::kOutOfType;
  }
  double d = 0;
  if (!parse_double(text, d) || !std::isfinite(d) || d != std::floor(d))
    return IntParse::kNotInteger;
  const double lo = static_cast<double>(std::numeric_limits<T>::min());
  const double hi_excl = std::ldexp(1.0, std::numeric_limits<T>::digits);
  if (d < lo || d >= hi_excl) return IntParse::kOutOfType;
  out = static_cast<T>(d);
  return IntParse::kOk;
}

bool parse_bool(const std::string& text, bool& out) {
  if (text == "true" || text == "True" || text == "TRUE") {
    out = true;
    return true;
  }
  if (text == "false" || text == "False" || text == "FALSE") {
    out = false;
    return true;
  }
  return false;
}

[[noreturn]] void fail(const std::string& origin, const std::string& msg) {
  throw Error(origin + ": " + msg);
}

// Parses one scalar of type T for `key`, range-checked; `origin` prefixes any error.
template <class T>
T parse_scalar(const KeySpec& spec, const std::string& key, const std::string& text,
               const std::string& origin) {
  const auto out_of_range = [&](const std::string& extra) {
    fail(origin, key + " = " + one_line(text) + " is out of range (allowed: " + allowed_text(spec) +
                     extra + ")");
  };
  if constexpr (std::is_same_v<T, bool>) {
    bool v = false;
    if (!parse_bool(text, v))
      fail(origin, key + ": expected true or false, got " + quote_value(text));
    return v;
  } else if constexpr (std::is_same_v<T, double>) {
    double v = 0;
    if (!parse_double(text, v)) fail(origin, key + ": expected a number, got " + quote_value(text));
    if (!std::isfinite(v))
      fail(origin, key + ": expected a finite number, got " + quote_value(text));
    if (!in_range(v, spec.range)) out_of_range("");
    return v;
  } else {
    T v{};
    const IntParse parsed = parse_integer(text, v);
    if (parsed == IntParse::kNotInteger)
      fail(origin, key + ": expected an integer, got " + quote_value(text));
    if (parsed == IntParse::kOutOfType)
      out_of_range(std::isfinite(spec.range.max) || std::is_same_v<T, uint64_t>
                       ? ""
                       : ", at most " + std::to_string(std::numeric_limits<T>::max()));
    if (!in_range(static_cast<double>(v), spec.range)) out_of_range("");
    return v;
  }
}

std::string list_text(const std::vector<std::string>& items) {
  std::string out = "[";
  out += join(items, ", ");
  out += ']';
  return out;
}

void set_leaf(const KeySpec& spec, const YAML::Node& node, Config& c, const std::string& origin) {
  const std::string& key = spec.key;
  const FieldRef ref = spec.field(c);
  const auto wrong_type = [&] {
    fail(origin, key + ": expected " + type_name(ref) + ", got " + describe(node));
  };
  const auto not_allowed = [&](const std::string& value) {
    fail(origin, key + " = " + value + " is not allowed (allowed: " + allowed_text(spec) + ")");
  };
  std::visit(
      [&](auto* field) {
        using T = std::remove_pointer_t<decltype(field)>;
        if constexpr (kIsList<T>) {
          // A single value stands for a list of one: "--set model.devices=cpu".
          std::vector<YAML::Node> items;
          if (node.IsSequence()) {
            for (const YAML::Node& e : node) items.push_back(e);
          } else if (node.IsScalar()) {
            items.push_back(node);
          } else if (!node.IsNull()) {
            wrong_type();
          }
          T values;
          std::vector<std::string> texts;
          for (size_t i = 0; i < items.size(); ++i) {
            if (!items[i].IsScalar())
              fail(origin, key + "[" + std::to_string(i) + "]: expected " +
                               (std::is_same_v<T, std::vector<int>> ? "an integer" : "a string") +
                               ", got " + describe(items[i]));
            texts.push_back(items[i].Scalar());
          }
          if constexpr (std::is_same_v<T, std::vector<int>>) {
            for (size_t i = 0; i < texts.size(); ++i) {
              int v = 0;
              const IntParse parsed = parse_integer(texts[i], v);
              if (parsed == IntParse::kNotInteger)
                fail(origin, key + "[" + std::to_string(i) + "]: expected an integer, got " +
                                 quote_value(texts[i]));
              if (parsed != IntParse::kOk || !in_range(static_cast<double>(v), spec.range))
                not_allowed(one_line(list_text(texts)));
              if (spec.rule == Rule::kAscending && !values.empty() && v <= values.back())
                not_allowed(one_line(list_text(texts)));
              values.push_back(v);
            }
          } else {
            values = texts;
            const bool any_empty =
                std::any_of(values.begin(), values.end(), [](const auto& s) { return s.empty(); });
            if (spec.rule == Rule::kNonEmpty && (values.empty() || any_empty))
              not_allowed(one_line(list_text(texts)));
          }
          *field = std::move(values);
        } else if constexpr (std::is_same_v<T, std::string>) {
          if (!node.IsScalar() && !node.IsNull()) wrong_type();
          const std::string text = node.IsNull() ? "" : node.Scalar();
          if (!spec.choices.empty() &&
              std::find(spec.choices.begin(), spec.choices.end(), text) == spec.choices.end())
            not_allowed(quote_value(text));
          if (spec.rule == Rule::kRunName && (text.empty() || text.find('/') != std::string::npos))
            not_allowed(quote_value(text));
          *field = text;
        } else {
          if (!node.IsScalar()) wrong_type();
          const T v = parse_scalar<T>(spec, key, node.Scalar(), origin);
          if constexpr (std::is_integral_v<T>) {
            if (spec.rule == Rule::kOdd && v % 2 == 0) not_allowed(one_line(node.Scalar()));
          }
          *field = v;
        }
      },
      ref);
}

// ---------------------------------------------------------------------------- loading

struct Loader {
  Config config;
  std::vector<std::string> origins;      // one per source: the file, then each --set
  size_t current = 0;                    // index into origins
  std::map<std::string, size_t> set_by;  // key -> the source that last set it
  std::set<std::string> seen_in_source;  // keys the current source has set
};

std::vector<std::string> child_names(const std::string& section) {
  std::vector<std::string> names;
  const std::string prefix = section + ".";
  for (const KeySpec& s : key_table()) {
    if (s.key.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string rest = s.key.substr(prefix.size());
    const std::string child = rest.substr(0, rest.find('.'));
    if (std::find(names.begin(), names.end(), child) == names.end()) names.push_back(child);
  }
  return names;
}

void apply(const std::string& key, const YAML::Node& node, Loader& ld) {
  const std::string& origin = ld.origins[ld.current];
  if (const KeySpec* spec = find_key(key)) {
    if (!ld.seen_in_source.insert(key).second) fail(origin, "key '" + key + "' is given twice");
    set_leaf(*spec, node, ld.config, origin);
    ld.set_by[key] = ld.current;
    return;
  }
  if (!key.empty() && !sections().count(key)) fail(origin, unknown_key_message(key));
  if (node.IsNull()) return;  // a section with every key commented out
  if (!node.IsMap()) {
    if (key.empty())
      fail(origin, "expected a mapping of keys at the top level, got " + describe(node));
    const std::vector<std::string> children = child_names(key);
    const std::string listed = children.size() <= 8 ? " (" + join(children, ", ") + ")" : "";
    fail(origin, key + ": expected a mapping of keys" + listed + ", got " + describe(node));
  }
  for (const auto& kv : node) {
    if (!kv.first.IsScalar())
      fail(origin,
           (key.empty() ? "" : key + ": ") + "expected key names, got " + describe(kv.first));
    apply(key.empty() ? kv.first.Scalar() : key + "." + kv.first.Scalar(), kv.second, ld);
  }
}

YAML::Node parse_yaml(const std::string& text, const std::string& origin) {
  try {
    return YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    fail(origin, "YAML syntax error at line " + std::to_string(e.mark.line + 1) + ", column " +
                     std::to_string(e.mark.column + 1) + ": " + e.msg);
  } catch (const YAML::Exception& e) {
    fail(origin, std::string("YAML error: ") + e.what());
  }
}

// Checks between keys, after every source: a file may be fixed by a later --set, so the
// error is charged to the last source that set one of the keys involved.
void check_consistency(const Loader& ld) {
  const Config& c = ld.config;
  const auto fail_for = [&](std::initializer_list<std::string> keys, const std::string& msg) {
    size_t source = 0;
    for (const std::string& k : keys) {
      const auto it = ld.set_by.find(k);
      if (it != ld.set_by.end()) source = std::max(source, it->second);
    }
    fail(ld.origins[source], msg);
  };
  const auto& m = c.model;
  const std::string towers = std::to_string(m.towers);

  if (m.fc8_units > 0 && m.fc8_units != m.num_classes)
    fail_for({"model.fc8.units", "model.num_classes"},
             "model.fc8.units = " + std::to_string(m.fc8_units) +
                 " must equal model.num_classes = " + std::to_string(m.num_classes) +
                 " (or be 0, meaning num_classes)");

  const std::pair<std::string, int> widths[] = {
      {"model.conv1.filters", m.conv1.filters}, {"model.conv2.filters", m.conv2.filters},
      {"model.conv3.filters", m.conv3.filters}, {"model.conv4.filters", m.conv4.filters},
      {"model.conv5.filters", m.conv5.filters}, {"model.fc6.units", m.fc6_units},
      {"model.fc7.units", m.fc7_units},         {"model.fc8.units", m.fc8_units}};
  for (const auto& [key, width] : widths)
    if (width > 0 && width % m.towers != 0)
      fail_for({key, "model.towers"}, key + " = " + std::to_string(width) +
                                          " must be divisible by model.towers = " + towers);

  if (c.data.source != "synthetic" && c.crop() > c.data.image_size) {
    const std::string crop =
        c.data.crop > 0
            ? "data.crop = " + std::to_string(c.data.crop)
            : "the crop (data.crop = 0: model.input_size = " + std::to_string(m.input_size) + ")";
    fail_for({"data.crop", "model.input_size", "data.image_size", "data.source"},
             crop + " must not exceed data.image_size = " + std::to_string(c.data.image_size));
  }

  if (c.data.order == "quasi_random" && c.data.source != "packed")
    fail_for({"data.order", "data.source"},
             "data.order = quasi_random reads a packed set block by block, but data.source = " +
                 c.data.source +
                 " (pack the data with alexnet-prep pack and use data.source = packed, or use "
                 "data.order = random)");

  for (const StageSide& side : stage_sides(m)) {
    if (side.out < 1) {
      const char* stage = side.stage;
      size_t source = 0;
      for (const KeySpec& s : key_table())
        if (s.key.starts_with("model.conv") || s.key.starts_with("model.pool") ||
            s.key == "model.input_size")
          if (const auto it = ld.set_by.find(s.key); it != ld.set_by.end())
            source = std::max(source, it->second);
      fail(ld.origins[source], "model.input_size = " + std::to_string(m.input_size) +
                                   " is too small for the layers: " + stage + "'s output is empty");
    }
  }
}

Config load(const std::string& text, const std::string& origin,
            const std::vector<std::string>& overrides, const std::string* stem) {
  Loader ld;
  ld.origins.push_back(origin);
  if (stem) ld.config.name = *stem;
  apply("", parse_yaml(text, origin), ld);

  for (const std::string& ov : overrides) {
    const std::string source = "--set " + one_line(ov);
    const size_t eq = ov.find('=');
    std::string key = eq == std::string::npos ? "" : ov.substr(0, eq);
    key.erase(0, key.find_first_not_of(" \t"));
    key.erase(key.find_last_not_of(" \t") + 1);
    if (key.empty()) throw Error(source + ": expected section.key=value (e.g. model.towers=1)");
    ld.origins.push_back(source);
    ld.current = ld.origins.size() - 1;
    ld.seen_in_source.clear();
    apply(key, parse_yaml(ov.substr(eq + 1), source), ld);
  }
  check_consistency(ld);
  return ld.config;
}

// ---------------------------------------------------------------------------- writing

// Plain only when every YAML reader (1.1 and 1.2) reads it back as this same string.
bool needs_quotes(const std::string& s) {
  if (s.empty()) return true;
  if (!std::isalpha(static_cast<unsigned char>(s[0])) && s[0] != '/' && s[0] != '_') return true;
  for (char ch : s)
    if (!std::isalnum(static_cast<unsigned char>(ch)) && !std::strchr("_./-", ch)) return true;
  static const std::set<std::string> special = {"true", "false", "yes", "no", "on",
                                                "off",  "null",  "y",   "n"};
  return special.count(lower(s)) > 0;
}

void emit_string(YAML::Emitter& out, const std::string& s) {
  if (needs_quotes(s)) out << YAML::DoubleQuoted;
  out << s;
}

// The value as YAML text / emitter calls; shared by the dump and the docs.
std::string value_text(const KeySpec& spec, const Config& c) {
  return std::visit(
      [](auto* field) -> std::string {
        using T = std::remove_pointer_t<decltype(field)>;
        if constexpr (std::is_same_v<T, double>) {
          return yaml_double(*field);
        } else if constexpr (std::is_same_v<T, bool>) {
          return *field ? "true" : "false";
        } else if constexpr (std::is_same_v<T, std::string>) {
          return field->empty() ? "\"\"" : *field;
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          return list_text(*field);
        } else if constexpr (std::is_same_v<T, std::vector<int>>) {
          std::vector<std::string> texts;
          for (int v : *field) texts.push_back(std::to_string(v));
          return list_text(texts);
        } else {
          return std::to_string(*field);
        }
      },
      field_of(spec, c));
}

void emit_value(YAML::Emitter& out, const KeySpec& spec, const Config& c) {
  std::visit(
      [&](auto* field) {
        using T = std::remove_pointer_t<decltype(field)>;
        if constexpr (std::is_same_v<T, std::string>) {
          emit_string(out, *field);
        } else if constexpr (std::is_same_v<T, std::vector<std::string>>) {
          out << YAML::Flow << YAML::BeginSeq;
          for (const std::string& s : *field) emit_string(out, s);
          out << YAML::EndSeq;
        } else if constexpr (std::is_same_v<T, std::vector<int>>) {
          out << YAML::Flow << YAML::BeginSeq;
          for (int v : *field) out << std::to_string(v);
          out << YAML::EndSeq;
        } else {
          out << value_text(spec, c);
        }
      },
      field_of(spec, c));
}

std::vector<std::string> split_key(const std::string& key) {
  std::vector<std::string> parts;
  std::stringstream ss(key);
  for (std::string part; std::getline(ss, part, '.');) parts.push_back(part);
  return parts;
}

std::string escape_cell(const std::string& s) {
  std::string out;
  for (char ch : s) out += ch == '|' ? std::string("\\|") : std::string(1, ch);
  return out;
}

}  // namespace

std::vector<StageSide> stage_sides(const Config::Model& m) {
  std::vector<StageSide> sides;
  int side = m.input_size;
  auto stage = [&](const char* name, int window, int stride, int pad, const char* key) {
    const int out = side < 1 ? 0 : conv_out(side, window, stride, pad);
    sides.push_back({name, side, out, window, pad, key});
    side = out;
  };
  auto conv = [&](const char* name, const ConvLayerConfig& l, const char* key) {
    stage(name, l.kernel, l.stride, l.pad, key);
  };
  auto pool = [&](const char* name) {
    stage(name, m.pool.size, m.pool.stride, 0, "model.pool.size");
  };
  conv("conv1", m.conv1, "model.conv1.kernel");
  pool("pool1");
  conv("conv2", m.conv2, "model.conv2.kernel");
  pool("pool2");
  conv("conv3", m.conv3, "model.conv3.kernel");
  conv("conv4", m.conv4, "model.conv4.kernel");
  conv("conv5", m.conv5, "model.conv5.kernel");
  pool("pool5");
  return sides;
}

Config load_config(const std::string& path, const std::vector<std::string>& overrides) {
  if (path.empty()) return load("", "defaults", overrides, nullptr);
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec))
    throw Error("cannot read config '" + path + "': it is a directory");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot read config '" + path + "': " + std::strerror(errno));
  std::stringstream text;
  text << in.rdbuf();
  if (in.bad()) throw Error("cannot read config '" + path + "': " + std::strerror(errno));
  const std::string stem = fs::path(path).stem().string();
  return load(text.str(), path, overrides, &stem);
}

Config config_from_yaml(const std::string& yaml_text, const std::string& origin,
                        const std::vector<std::string>& overrides) {
  return load(yaml_text, origin, overrides, nullptr);
}

std::string config_to_yaml(const Config& c) {
  YAML::Emitter out;
  out << YAML::BeginMap;
  std::vector<std::string> open;  // the sections the emitter is inside
  for (const KeySpec& spec : key_table()) {
    std::vector<std::string> parts = split_key(spec.key);
    const std::string leaf = parts.back();
    parts.pop_back();
    size_t common = 0;
    while (common < open.size() && common < parts.size() && open[common] == parts[common]) ++common;
    for (; open.size() > common; open.pop_back()) out << YAML::EndMap;
    for (; open.size() < parts.size(); open.push_back(parts[open.size()]))
      out << YAML::Key << parts[open.size()] << YAML::Value << YAML::BeginMap;
    out << YAML::Key << leaf << YAML::Value;
    emit_value(out, spec, c);
  }
  for (; !open.empty(); open.pop_back()) out << YAML::EndMap;
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

std::string config_reference_markdown() {
  std::string md = "| key | default | allowed | meaning |\n|---|---|---|---|\n";
  const Config defaults;
  for (const KeySpec& spec : key_table())
    md += "| `" + spec.key + "` | `" + escape_cell(value_text(spec, defaults)) + "` | " +
          escape_cell(allowed_text(spec)) + " | " + escape_cell(spec.meaning) + " |\n";
  return md;
}

std::vector<std::string> config_keys() {
  std::vector<std::string> keys;
  for (const KeySpec& spec : key_table()) keys.push_back(spec.key);
  return keys;
}

}  // namespace alexnet
