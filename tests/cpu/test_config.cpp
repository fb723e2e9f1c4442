// The config: paper defaults, YAML files, --set overrides, the round trip through YAML, and
// one clear line for each kind of mistake a user can make.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <limits>
#include <set>
#include <string>
#include <vector>

#include "alexnet/config.h"
#include "alexnet/error.h"

namespace alexnet {
namespace {

namespace fs = std::filesystem;

// The message of the alexnet::Error f throws ("" and a test failure when it throws none).
std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected an alexnet::Error";
  return "";
}

::testing::AssertionResult contains(const std::string& text, const std::string& part) {
  if (text.find(part) != std::string::npos) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << text << "' does not contain '" << part << "'";
}

::testing::AssertionResult starts_with(const std::string& text, const std::string& prefix) {
  if (text.rfind(prefix, 0) == 0) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "'" << text << "' does not start with '" << prefix << "'";
}

std::string yaml_error(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  const std::string msg = error_of([&] { config_from_yaml(yaml, "t.yaml", overrides); });
  EXPECT_EQ(msg.find('\n'), std::string::npos) << "not one line: " << msg;
  return msg;
}

class ConfigFiles : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() /
           ("alexnet_test_config_" + std::to_string(getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write(const std::string& name, const std::string& text) {
    const fs::path p = dir_ / name;
    std::ofstream(p) << text;
    return p.string();
  }

  fs::path dir_;
};

TEST(Config, DefaultsArePaper) {
  const Config c;
  EXPECT_EQ(c.name, "alexnet");
  EXPECT_EQ(c.data.batch_size, 128);
  EXPECT_EQ(c.data.image_size, 256);
  EXPECT_EQ(c.crop(), 227);
  EXPECT_DOUBLE_EQ(c.data.scale, 1.0);
  EXPECT_TRUE(c.augment.flip);
  EXPECT_DOUBLE_EQ(c.augment.lighting, 0.1);
  EXPECT_EQ(c.augment.crop, "random");
  EXPECT_EQ(c.model.num_classes, 1000);
  EXPECT_EQ(c.model.towers, 2);
  EXPECT_EQ(c.model.activation, "relu");
  EXPECT_DOUBLE_EQ(c.model.dropout, 0.5);
  EXPECT_EQ(c.model.input_size, 227);
  EXPECT_EQ(c.model.conv1, (ConvLayerConfig{96, 11, 4, 0}));
  EXPECT_EQ(c.model.conv2, (ConvLayerConfig{256, 5, 1, 2}));
  EXPECT_EQ(c.model.conv3, (ConvLayerConfig{384, 3, 1, 1}));
  EXPECT_EQ(c.model.conv4, (ConvLayerConfig{384, 3, 1, 1}));
  EXPECT_EQ(c.model.conv5, (ConvLayerConfig{256, 3, 1, 1}));
  EXPECT_EQ(c.model.fc6_units, 4096);
  EXPECT_EQ(c.model.fc7_units, 4096);
  EXPECT_EQ(c.fc8(), 1000);
  EXPECT_EQ(c.model.lrn.size, 5);
  EXPECT_DOUBLE_EQ(c.model.lrn.k, 2.0);
  EXPECT_DOUBLE_EQ(c.model.lrn.alpha, 1e-4);
  EXPECT_DOUBLE_EQ(c.model.lrn.beta, 0.75);
  EXPECT_FALSE(c.model.lrn.alpha_over_n);
  EXPECT_EQ(c.model.pool.size, 3);
  EXPECT_EQ(c.model.pool.stride, 2);
  EXPECT_EQ(c.model.init.scheme, "paper");
  EXPECT_DOUBLE_EQ(c.model.init.weight_std, 0.01);
  EXPECT_DOUBLE_EQ(c.model.init.bias_one, 1.0);
  EXPECT_DOUBLE_EQ(c.optim.lr, 0.01);
  EXPECT_DOUBLE_EQ(c.optim.momentum, 0.9);
  EXPECT_DOUBLE_EQ(c.optim.weight_decay, 0.0005);
  EXPECT_DOUBLE_EQ(c.optim.lr_factor, 0.1);
  EXPECT_EQ(c.optim.schedule, "plateau");
  EXPECT_EQ(c.train.epochs, 90);
  EXPECT_EQ(c.train.max_steps, 0);
}

TEST(Config, NoFileNoOverridesIsTheDefaults) {
  EXPECT_EQ(load_config("", {}), Config{});
  EXPECT_EQ(config_from_yaml("", "empty", {}), Config{});
  EXPECT_EQ(config_from_yaml("# only a comment\nmodel:\n", "comment", {}), Config{});
}

TEST(Config, KeyList) {
  const std::vector<std::string> expected = {
      "name",
      "seed",
      "data.source",
      "data.train",
      "data.val",
      "data.batch_size",
      "data.image_size",
      "data.crop",
      "data.workers",
      "data.prefetch",
      "data.dct_scaling",
      "data.order",
      "data.val_labels",
      "data.class_names",
      "data.stats",
      "data.scale",
      "data.quasi_random.chunk",
      "data.quasi_random.window",
      "data.synthetic.train_images",
      "data.synthetic.val_images",
      "data.synthetic.noise",
      "augment.flip",
      "augment.lighting",
      "augment.crop",
      "model.num_classes",
      "model.towers",
      "model.devices",
      "model.activation",
      "model.dropout",
      "model.input_size",
      "model.conv1.filters",
      "model.conv1.kernel",
      "model.conv1.stride",
      "model.conv1.pad",
      "model.conv2.filters",
      "model.conv2.kernel",
      "model.conv2.stride",
      "model.conv2.pad",
      "model.conv3.filters",
      "model.conv3.kernel",
      "model.conv3.stride",
      "model.conv3.pad",
      "model.conv4.filters",
      "model.conv4.kernel",
      "model.conv4.stride",
      "model.conv4.pad",
      "model.conv5.filters",
      "model.conv5.kernel",
      "model.conv5.stride",
      "model.conv5.pad",
      "model.fc6.units",
      "model.fc7.units",
      "model.fc8.units",
      "model.lrn.size",
      "model.lrn.k",
      "model.lrn.alpha",
      "model.lrn.beta",
      "model.lrn.alpha_over_n",
      "model.pool.size",
      "model.pool.stride",
      "model.init.scheme",
      "model.init.weight_std",
      "model.init.bias_one",
      "optim.lr",
      "optim.momentum",
      "optim.weight_decay",
      "optim.decay_biases",
      "optim.schedule",
      "optim.lr_factor",
      "optim.patience",
      "optim.min_delta",
      "optim.step_epochs",
      "optim.min_lr",
      "optim.poly_power",
      "optim.method",
      "optim.lars_eta",
      "optim.warmup_epochs",
      "optim.warmup_start",
      "train.epochs",
      "train.max_steps",
      "train.log_every",
      "checkpoint.every_epochs",
      "checkpoint.keep",
      "cuda.workspace_mb",
      "cuda.benchmark",
      "cuda.deterministic",
      "cuda.tf32",
      "cuda.exchange_timeout_s",
      "dist.timeout_s",
      "dist.check_weights_every",
  };
  EXPECT_EQ(config_keys(), expected);
}

// A valid value for key that differs from the default.
std::string other_value(const std::string& key) {
  if (key == "name") return "other";
  if (key == "data.source") return "packed";
  if (key == "data.train" || key == "data.val" || key == "data.stats") return "/x";
  if (key == "augment.flip" || key == "data.dct_scaling") return "false";
  if (key == "augment.crop") return "center";
  if (key == "data.order") return "quasi_random";
  if (key == "optim.warmup_start") return "0.5";
  if (key == "optim.method") return "lars";
  if (key == "model.towers") return "1";
  if (key == "model.devices") return "[cpu]";
  if (key == "model.activation") return "tanh";
  if (key == "model.dropout" || key == "optim.momentum" || key == "optim.lr_factor") return "0.25";
  if (key == "model.lrn.alpha_over_n" || key == "optim.decay_biases" || key == "cuda.benchmark" ||
      key == "cuda.tf32")
    return "true";
  if (key == "cuda.deterministic") return "false";
  if (key == "model.init.scheme") return "kaiming";
  if (key == "optim.schedule") return "step";
  if (key == "optim.step_epochs") return "[7]";
  if (key.ends_with(".filters") || key.ends_with(".units")) return "1000";
  if (key == "model.pool.size" || key == "model.pool.stride") return "1";
  if (key.ends_with(".stride")) return "2";
  if (key == "model.input_size") return "229";
  if (key == "data.crop" || key == "data.image_size") return "200";
  return "7";
}

TEST(Config, EveryKeyReachesItsOwnField) {
  // Setting one key at a time must change the config, and never the same way twice.
  std::vector<Config> seen;
  for (const std::string& key : config_keys()) {
    std::vector<std::string> sets = {key + "=" + other_value(key)};
    if (key == "data.order") sets.insert(sets.begin(), "data.source=packed");  // needs one
    const Config c = config_from_yaml("", "t", sets);
    EXPECT_NE(c, Config{}) << key;
    for (const Config& other : seen) EXPECT_NE(c, other) << key;
    seen.push_back(c);
  }
}

TEST_F(ConfigFiles, FileOverridesSomeKeys) {
  const std::string path = write("small.yaml", R"(# a small run
seed: 42
data:
  source: folder
  train: /data/train
  batch_size: 32
  synthetic: {noise: 12.5}
model:
  towers: 1
  num_classes: 10
  devices: [cpu]
  conv1: {filters: 48, kernel: 11, stride: 4}
  fc6: {units: 1024}
  lrn:
    alpha_over_n: true
optim:
  lr: 0.02
  step_epochs: [10, 20]
train.max_steps: 1e6
)");
  const Config c = load_config(path, {});
  EXPECT_EQ(c.name, "small");
  EXPECT_EQ(c.seed, 42u);
  EXPECT_EQ(c.data.source, "folder");
  EXPECT_EQ(c.data.train, "/data/train");
  EXPECT_EQ(c.data.batch_size, 32);
  EXPECT_DOUBLE_EQ(c.data.synthetic.noise, 12.5);
  EXPECT_EQ(c.model.towers, 1);
  EXPECT_EQ(c.model.num_classes, 10);
  EXPECT_EQ(c.model.devices, std::vector<std::string>{"cpu"});
  EXPECT_EQ(c.model.conv1, (ConvLayerConfig{48, 11, 4, 0}));
  EXPECT_EQ(c.model.fc6_units, 1024);
  EXPECT_TRUE(c.model.lrn.alpha_over_n);
  EXPECT_DOUBLE_EQ(c.optim.lr, 0.02);
  EXPECT_EQ(c.optim.step_epochs, (std::vector<int>{10, 20}));
  EXPECT_EQ(c.train.max_steps, 1000000);
  // Untouched keys keep the paper's values.
  EXPECT_EQ(c.model.conv2, Config{}.model.conv2);
  EXPECT_DOUBLE_EQ(c.optim.momentum, 0.9);
}

TEST_F(ConfigFiles, NameKeyBeatsTheStem) {
  EXPECT_EQ(load_config(write("a.yaml", "name: b\n"), {}).name, "b");
  EXPECT_EQ(load_config(write("a.yaml", "seed: 3\n"), {"name=c"}).name, "c");
}

TEST_F(ConfigFiles, OverridesApplyAfterTheFile) {
  const std::string path = write("o.yaml", "model: {towers: 1, conv2: {filters: 255}}\n");
  const Config c = load_config(
      path, {"model.conv2.filters=256", "model.towers=2", "model.devices=[cpu:0,cpu:1]",
             "optim.step_epochs=[10, 20]", "data.stats=/s/stats.safetensors", "augment.flip=false",
             "optim.lr=1e-3", "model.conv3={filters: 128, pad: 0}", "data.stats="});
  EXPECT_EQ(c.model.towers, 2);
  EXPECT_EQ(c.model.conv2.filters, 256);
  EXPECT_EQ(c.model.devices, (std::vector<std::string>{"cpu:0", "cpu:1"}));
  EXPECT_EQ(c.optim.step_epochs, (std::vector<int>{10, 20}));
  EXPECT_EQ(c.data.stats, "");  // the later --set wins
  EXPECT_FALSE(c.augment.flip);
  EXPECT_DOUBLE_EQ(c.optim.lr, 1e-3);
  EXPECT_EQ(c.model.conv3, (ConvLayerConfig{128, 3, 1, 0}));
  EXPECT_EQ(config_from_yaml("", "t", {"model.devices=cuda:1"}).model.devices,
            std::vector<std::string>{"cuda:1"});
  EXPECT_TRUE(config_from_yaml("", "t", {"optim.step_epochs=[]"}).optim.step_epochs.empty());
}

TEST(Config, RoundTripDefaults) {
  const Config c;
  EXPECT_EQ(config_from_yaml(config_to_yaml(c), "rt", {}), c);
}

TEST(Config, RoundTripEveryField) {
  Config c;
  c.name = "run-1.b";
  c.seed = std::numeric_limits<uint64_t>::max();
  c.data.source = "packed";
  c.data.train = "/data/with space/train: x";
  c.data.val = "true";
  c.data.batch_size = 7;
  c.data.image_size = 300;
  c.data.crop = 0;
  c.data.workers = 3;
  c.data.stats = "~";
  c.data.scale = 1.0 / 3.0;
  c.data.synthetic = {5, 6, 0.1 + 0.2};
  c.augment = {false, 1e-300, "center"};
  c.model.num_classes = 10;
  c.model.towers = 1;
  c.model.devices = {"cuda:0", "null", "#x", "'q\"", "x\ny"};
  c.model.activation = "tanh";
  c.model.dropout = 0.1;
  c.model.input_size = 229;
  c.model.conv1 = {95, 12, 3, 1};
  c.model.conv2 = {255, 3, 1, 1};
  c.model.conv3 = {33, 3, 2, 0};
  c.model.conv4 = {35, 1, 1, 0};
  c.model.conv5 = {37, 1, 1, 0};
  c.model.fc6_units = 101;
  c.model.fc7_units = 103;
  c.model.fc8_units = 10;
  c.model.lrn = {3, 1.0000000000000002, 2.5e-5, 0.7500000000000001, true};
  c.model.pool = {2, 2};
  c.model.init = {"kaiming", 123456.789, -0.5};
  c.optim = {0.0123456789012345, 0.95, 5e-324, true, "step", 1.0, 0, 0.0, {1, 5}, 1e-7};
  c.train = {3, std::numeric_limits<int64_t>::max(), 1};
  c.checkpoint = {2, 0};
  const std::string yaml = config_to_yaml(c);
  const Config back = config_from_yaml(yaml, "rt", {});
  EXPECT_EQ(back, c) << yaml;
  EXPECT_EQ(config_to_yaml(back), yaml);
}

TEST(Config, YamlIsNestedAndComplete) {
  const std::string yaml = config_to_yaml(Config{});
  EXPECT_TRUE(contains(yaml, "model:\n"));
  EXPECT_TRUE(contains(yaml, "  conv1:\n    filters: 96\n"));
  EXPECT_TRUE(contains(yaml, "  lr: 0.01\n"));
  EXPECT_TRUE(contains(yaml, "  alpha: 0.0001\n"));
  EXPECT_TRUE(contains(yaml, "devices: [auto]"));
  EXPECT_TRUE(contains(yaml, "step_epochs: [30, 60, 80]"));
  // Each section opened once: the dump depends on keys of a section being adjacent.
  std::set<std::string> closed;
  std::string current;
  for (const std::string& key : config_keys()) {
    const std::string section = key.substr(0, key.find('.'));
    if (section == current) continue;
    EXPECT_FALSE(closed.count(section)) << section << " is split";
    if (!current.empty()) closed.insert(current);
    current = section;
  }
}

TEST(Config, ReferenceMarkdownListsEveryKey) {
  const std::string md = config_reference_markdown();
  EXPECT_TRUE(starts_with(md, "| key | default | allowed | meaning |\n|---|---|---|---|\n"));
  for (const std::string& key : config_keys()) EXPECT_TRUE(contains(md, "| `" + key + "` |"));
  EXPECT_TRUE(contains(md, "| `model.towers` | `2` | 1 or 2 |"));
  EXPECT_TRUE(contains(md, "| `model.activation` | `relu` | relu, tanh |"));
  EXPECT_TRUE(contains(md, "| `optim.momentum` | `0.9` | 0 <= x < 1 |"));
  const size_t rows = static_cast<size_t>(std::count(md.begin(), md.end(), '\n'));
  EXPECT_EQ(rows, config_keys().size() + 2);
}

TEST(ConfigErrors, UnknownKeySuggestsTheClosest) {
  const std::string msg = yaml_error("model:\n  conv1:\n    filtres: 96\n");
  EXPECT_EQ(msg, "t.yaml: unknown key 'model.conv1.filtres' (did you mean 'model.conv1.filters'?)");
  EXPECT_TRUE(contains(yaml_error("momentum: 0.8\n"), "(did you mean 'optim.momentum'?)"));
  EXPECT_TRUE(contains(yaml_error("train: {lr: 0.1}\n"), "(did you mean 'optim.lr'?)"));
  EXPECT_TRUE(contains(yaml_error("modle: {towers: 1}\n"), "'modle' (did you mean 'model'?)"));
  EXPECT_TRUE(contains(yaml_error("model: {fc6: {unit: 8}}\n"), "'model.fc6.units'"));
  EXPECT_EQ(yaml_error("qqqqqqqqqq: 1\n"), "t.yaml: unknown key 'qqqqqqqqqq'");
  EXPECT_EQ(yaml_error("", {"optim.lrr=0.1"}),
            "--set optim.lrr=0.1: unknown key 'optim.lrr' (did you mean 'optim.lr'?)");
}

TEST(ConfigErrors, MappingAndScalarMixups) {
  EXPECT_EQ(yaml_error("model: {towers: {a: 1}}\n"),
            "t.yaml: model.towers: expected an integer, got a mapping");
  EXPECT_EQ(
      yaml_error("model: {conv1: 5}\n"),
      "t.yaml: model.conv1: expected a mapping of keys (filters, kernel, stride, pad), got '5'");
  EXPECT_TRUE(contains(yaml_error("model: 3\n"), "model: expected a mapping of keys, got '3'"));
  EXPECT_TRUE(contains(yaml_error("- 1\n- 2\n"), "expected a mapping of keys at the top level"));
  EXPECT_TRUE(
      contains(yaml_error("optim: {lr: [1]}\n"), "optim.lr: expected a number, got a list"));
  EXPECT_TRUE(contains(yaml_error("model: {devices: {a: b}}\n"),
                       "model.devices: expected a list of strings, got a mapping"));
}

TEST(ConfigErrors, WrongType) {
  EXPECT_EQ(yaml_error("model: {towers: two}\n"),
            "t.yaml: model.towers: expected an integer, got 'two'");
  EXPECT_EQ(yaml_error("model:\n  conv1:\n    filters: 2.5\n"),
            "t.yaml: model.conv1.filters: expected an integer, got '2.5'");
  EXPECT_EQ(yaml_error("augment: {flip: yes}\n"),
            "t.yaml: augment.flip: expected true or false, got 'yes'");
  EXPECT_EQ(yaml_error("optim: {lr: fast}\n"), "t.yaml: optim.lr: expected a number, got 'fast'");
  EXPECT_EQ(yaml_error("optim: {lr: .inf}\n"), "t.yaml: optim.lr: expected a number, got '.inf'");
  EXPECT_EQ(yaml_error("model: {towers: }\n"),
            "t.yaml: model.towers: expected an integer, got nothing");
  EXPECT_EQ(yaml_error("optim: {step_epochs: [10, x]}\n"),
            "t.yaml: optim.step_epochs[1]: expected an integer, got 'x'");
  EXPECT_EQ(yaml_error("", {"model.towers=two"}),
            "--set model.towers=two: model.towers: expected an integer, got 'two'");
}

TEST(ConfigErrors, OutOfRangeOrNotAllowed) {
  EXPECT_EQ(yaml_error("model: {towers: 3}\n"),
            "t.yaml: model.towers = 3 is out of range (allowed: 1 or 2)");
  EXPECT_EQ(yaml_error("", {"model.towers=3"}),
            "--set model.towers=3: model.towers = 3 is out of range (allowed: 1 or 2)");
  EXPECT_EQ(yaml_error("model: {activation: sigmoid}\n"),
            "t.yaml: model.activation = 'sigmoid' is not allowed (allowed: relu, tanh)");
  EXPECT_EQ(yaml_error("optim: {momentum: 1.0}\n"),
            "t.yaml: optim.momentum = 1.0 is out of range (allowed: 0 <= x < 1)");
  EXPECT_EQ(yaml_error("optim: {lr: 0}\n"), "t.yaml: optim.lr = 0 is out of range (allowed: > 0)");
  EXPECT_EQ(yaml_error("optim: {lr_factor: 1.5}\n"),
            "t.yaml: optim.lr_factor = 1.5 is out of range (allowed: 0 < x <= 1)");
  EXPECT_EQ(yaml_error("model: {lrn: {size: 4}}\n"),
            "t.yaml: model.lrn.size = 4 is not allowed (allowed: odd, >= 1)");
  EXPECT_EQ(yaml_error("data: {batch_size: 0}\n"),
            "t.yaml: data.batch_size = 0 is out of range (allowed: >= 1)");
  EXPECT_EQ(yaml_error("data: {batch_size: 99999999999}\n"),
            "t.yaml: data.batch_size = 99999999999 is out of range (allowed: >= 1, at most "
            "2147483647)");
  EXPECT_EQ(yaml_error("model: {dropout: -0.1}\n"),
            "t.yaml: model.dropout = -0.1 is out of range (allowed: 0 <= x < 1)");
  EXPECT_EQ(yaml_error("data: {source: imagenet}\n"),
            "t.yaml: data.source = 'imagenet' is not allowed (allowed: folder, packed, synthetic)");
  EXPECT_EQ(yaml_error("augment: {crop: corner}\n"),
            "t.yaml: augment.crop = 'corner' is not allowed (allowed: random, center)");
  EXPECT_EQ(yaml_error("optim: {schedule: cosine}\n"),
            "t.yaml: optim.schedule = 'cosine' is not allowed (allowed: plateau, step, poly)");
  EXPECT_EQ(yaml_error("model: {init: {scheme: xavier}}\n"),
            "t.yaml: model.init.scheme = 'xavier' is not allowed (allowed: paper, kaiming)");
  EXPECT_EQ(yaml_error("model: {devices: []}\n"),
            "t.yaml: model.devices = [] is not allowed (allowed: a non-empty list)");
  EXPECT_EQ(yaml_error("optim: {step_epochs: [20, 10]}\n"),
            "t.yaml: optim.step_epochs = [20, 10] is not allowed (allowed: ascending epochs, "
            "each >= 1)");
  EXPECT_EQ(yaml_error("seed: -1\n"),
            "t.yaml: seed = -1 is out of range (allowed: 0 to 18446744073709551615)");
  EXPECT_EQ(yaml_error("name: a/b\n"),
            "t.yaml: name = 'a/b' is not allowed (allowed: non-empty, no '/')");
}

TEST(ConfigErrors, CrossField) {
  EXPECT_EQ(yaml_error("model: {conv2: {filters: 255}}\n"),
            "t.yaml: model.conv2.filters = 255 must be divisible by model.towers = 2");
  EXPECT_EQ(yaml_error("model: {fc7: {units: 4095}}\n"),
            "t.yaml: model.fc7.units = 4095 must be divisible by model.towers = 2");
  EXPECT_NO_THROW(config_from_yaml("model: {towers: 1, conv2: {filters: 255}}\n", "t", {}));
  // The error belongs to whichever source made the keys disagree.
  EXPECT_EQ(
      yaml_error("model: {towers: 1, conv2: {filters: 255}}\n", {"model.towers=2"}),
      "--set model.towers=2: model.conv2.filters = 255 must be divisible by model.towers = 2");
  EXPECT_EQ(yaml_error("model: {fc8: {units: 500}}\n"),
            "t.yaml: model.fc8.units = 500 must equal model.num_classes = 1000 (or be 0, meaning "
            "num_classes)");
  EXPECT_NO_THROW(config_from_yaml("model: {fc8: {units: 1000}}\n", "t", {}));
  // A crop larger than the stored images is only a problem for images that are stored.
  EXPECT_NO_THROW(config_from_yaml("data: {image_size: 200}\n", "t", {}));
  EXPECT_EQ(yaml_error("data: {source: folder, image_size: 200}\n"),
            "t.yaml: the crop (data.crop = 0: model.input_size = 227) must not exceed "
            "data.image_size = 200");
  EXPECT_EQ(yaml_error("data: {source: folder, crop: 300}\n"),
            "t.yaml: data.crop = 300 must not exceed data.image_size = 256");
  // Quasi-random order reads packed shards block by block.
  EXPECT_EQ(yaml_error("data: {source: folder, order: quasi_random}\n"),
            "t.yaml: data.order = quasi_random reads a packed set block by block, but "
            "data.source = folder (pack the data with alexnet-prep pack and use data.source = "
            "packed, or use data.order = random)");
  EXPECT_NO_THROW(config_from_yaml("data: {source: packed, order: quasi_random}\n", "t", {}));
  EXPECT_EQ(yaml_error("data: {source: packed, order: quasi_random}\n", {"data.source=synthetic"}),
            "--set data.source=synthetic: data.order = quasi_random reads a packed set block by "
            "block, but data.source = synthetic (pack the data with alexnet-prep pack and use "
            "data.source = packed, or use data.order = random)");
  EXPECT_EQ(yaml_error("", {"model.input_size=32"}),
            "--set model.input_size=32: model.input_size = 32 is too small for the layers: "
            "pool2's output is empty");
}

TEST(ConfigErrors, DuplicateKey) {
  EXPECT_EQ(yaml_error("model: {towers: 1}\nmodel.towers: 2\n"),
            "t.yaml: key 'model.towers' is given twice");
}

TEST(ConfigErrors, MalformedOverride) {
  EXPECT_EQ(yaml_error("", {"model.towers"}),
            "--set model.towers: expected section.key=value (e.g. model.towers=1)");
  EXPECT_EQ(yaml_error("", {"=3"}), "--set =3: expected section.key=value (e.g. model.towers=1)");
  EXPECT_TRUE(starts_with(yaml_error("", {"optim.step_epochs=[1, 2"}),
                          "--set optim.step_epochs=[1, 2: YAML syntax error at line"));
}

TEST_F(ConfigFiles, YamlSyntaxErrorNamesFileLineColumn) {
  const std::string path = write("bad.yaml", "model:\n  towers: 1\n conv1: [1, 2\n");
  const std::string msg = error_of([&] { load_config(path, {}); });
  EXPECT_TRUE(starts_with(msg, path + ": YAML syntax error at line 3, column 2: ")) << msg;
  EXPECT_EQ(msg.find('\n'), std::string::npos);
}

TEST_F(ConfigFiles, UnreadableFile) {
  const std::string missing = (dir_ / "missing.yaml").string();
  EXPECT_EQ(error_of([&] { load_config(missing, {}); }),
            "cannot read config '" + missing + "': No such file or directory");
  EXPECT_EQ(error_of([&] { load_config(dir_.string(), {}); }),
            "cannot read config '" + dir_.string() + "': it is a directory");
}

TEST_F(ConfigFiles, ErrorsNameTheFile) {
  const std::string path = write("typo.yaml", "optim:\n  momentun: 0.9\n");
  EXPECT_EQ(error_of([&] { load_config(path, {}); }),
            path + ": unknown key 'optim.momentun' (did you mean 'optim.momentum'?)");
}

}  // namespace
}  // namespace alexnet
