// The run configuration: every number of the paper, with the paper's value as default.
// Loaded from YAML, overridden by --set section.key=value, validated, and written back
// (resolved) into the run directory and every checkpoint.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace alexnet {

struct ConvLayerConfig {
  int filters = 0;  // whole net (both towers together)
  int kernel = 1;
  int stride = 1;
  int pad = 0;

  bool operator==(const ConvLayerConfig&) const = default;
};

struct Config {
  std::string name = "alexnet";  // the config file's stem; names the default run directory
  uint64_t seed = 1;

  struct Synthetic {
    int train_images = 10000;
    int val_images = 1000;
    double noise = 40.0;  // std of the per-pixel noise, 0-255 scale
    bool operator==(const Synthetic&) const = default;
  };
  // data.order: quasi_random: how a packed set is read (quasi_random_order in data.h).
  struct QuasiRandom {
    int chunk = 256;  // consecutive packed images read as one block (~7 MB of 256^2 JPEGs)
    int window = 32;  // chunks whose images are shuffled together (~8 k images in the cache)
    bool operator==(const QuasiRandom&) const = default;
  };
  struct Data {
    std::string source = "synthetic";  // folder | packed | synthetic
    std::string train;                 // dataset paths (folder / packed sources)
    std::string val;
    std::string val_labels;   // flat val folder: LOC_val_solution.csv or "filename wnid" lines
    std::string class_names;  // LOC_synset_mapping.txt or words.txt: "wnid name, name..." lines
    int batch_size = 128;
    int image_size = 256;  // stored image side S (crops are taken from S x S)
    int crop = 0;          // crop side; 0 = model.input_size
    int workers = 4;
    int prefetch = 2;  // batches decoding ahead of the one training
    // Decode a JPEG at the smallest scale M/8 that keeps its shorter side >= image_size
    // (libjpeg-turbo's DCT scaling: 2-4x fewer pixels for ImageNet photos), then resize as usual.
    bool dct_scaling = true;
    // random: every epoch a uniform permutation (one read per image, anywhere in the data).
    // quasi_random (packed sets only): chunks of consecutive packed images in a random order,
    // images shuffled within a window of chunks, so data larger than RAM is read in large blocks.
    std::string order = "random";
    QuasiRandom quasi_random;
    std::string stats;   // safetensors with data.mean / data.pca_*; empty = computed at start
    double scale = 1.0;  // input = (pixel - mean) * scale
    Synthetic synthetic;
    bool operator==(const Data&) const = default;
  } data;

  struct Augment {
    bool flip = true;
    double lighting = 0.1;        // std of the PCA lighting alphas; 0 = off
    std::string crop = "random";  // random | center
    bool operator==(const Augment&) const = default;
  } augment;

  struct Lrn {
    int size = 5;
    double k = 2.0;
    double alpha = 1e-4;
    double beta = 0.75;
    bool alpha_over_n = false;  // Caffe/cuda-convnet/PyTorch convention
    bool operator==(const Lrn&) const = default;
  };
  struct Pool {
    int size = 3;
    int stride = 2;
    bool operator==(const Pool&) const = default;
  };
  struct Init {
    std::string scheme = "paper";  // paper: N(0, weight_std^2) | kaiming: N(0, 2/fan_in)
    double weight_std = 0.01;
    double bias_one = 1.0;  // the bias of conv2, conv4, conv5, fc6, fc7 (0 for the others)
    bool operator==(const Init&) const = default;
  };
  struct Model {
    int num_classes = 1000;
    int towers = 2;
    std::vector<std::string> devices = {"auto"};
    std::string activation = "relu";  // relu | tanh
    double dropout = 0.5;
    int input_size = 227;
    ConvLayerConfig conv1{96, 11, 4, 0};
    ConvLayerConfig conv2{256, 5, 1, 2};
    ConvLayerConfig conv3{384, 3, 1, 1};
    ConvLayerConfig conv4{384, 3, 1, 1};
    ConvLayerConfig conv5{256, 3, 1, 1};
    int fc6_units = 4096;  // keys model.fc6.units ...
    int fc7_units = 4096;
    int fc8_units = 0;  // 0 = model.num_classes
    Lrn lrn;
    Pool pool;
    Init init;
    bool operator==(const Model&) const = default;
  } model;

  struct Optim {
    double lr = 0.01;
    double momentum = 0.9;
    double weight_decay = 0.0005;
    bool decay_biases = false;
    std::string schedule = "plateau";  // plateau | step | poly
    double lr_factor = 0.1;            // multiplier at each drop
    int patience = 2;                  // plateau: epochs without improvement before a drop
    double min_delta = 0.001;  // plateau: a smaller fall of val top-1 error is no improvement
    std::vector<int> step_epochs = {30, 60, 80};  // step: drop after these epochs
    double min_lr = 0.0;                          // never drop below this
    double poly_power = 2.0;  // poly: lr * (1 - k / K)^poly_power over the K steps after warm-up
    // Linear warm-up (Goyal et al. 2017, for large batches): over the first warmup_epochs the
    // LR rises from warmup_start * lr to lr, step by step. 0 epochs = none.
    double warmup_epochs = 0.0;
    double warmup_start = 0.0;
    // sgd: the paper's update. lars: each weight tensor's step is scaled by its trust ratio
    // lars_eta * |w| / (|grad| + weight_decay * |w|) (You et al. 2017); biases are not scaled.
    std::string method = "sgd";  // sgd | lars
    double lars_eta = 0.001;
    bool operator==(const Optim&) const = default;
  } optim;

  struct Train {
    int epochs = 90;
    int64_t max_steps = 0;  // 0 = no limit
    int log_every = 20;     // steps between lines in train.log
    bool operator==(const Train&) const = default;
  } train;

  struct Checkpoint {
    int every_epochs = 1;  // also write checkpoints/epoch-NNN.safetensors every N epochs
    int keep = 3;          // how many epoch-NNN files to keep (0 = all)
    bool operator==(const Checkpoint&) const = default;
  } checkpoint;

  // How the CUDA backend runs (nothing here changes the math beyond rounding; tf32 does that).
  struct Cuda {
    int workspace_mb = 256;     // most device scratch one convolution may use
    bool benchmark = false;     // time every cuDNN algorithm once per shape instead of heuristics
    bool deterministic = true;  // bit-reproducible algorithms only, so a resumed run is exact
    bool tf32 = false;          // TF32 tensor cores in conv and fc (~1e-3 relative error)
    double exchange_timeout_s = 300;  // an NCCL collective not done by then ends the run
    bool operator==(const Cuda&) const = default;
  } cuda;

  // Many ranks (mpirun, srun): alexnet/dist.h.
  struct Dist {
    double timeout_s = 600;          // a collective waiting longer for the other ranks ends the job
    int check_weights_every = 1000;  // steps between comparisons of the replicas' weights
    bool operator==(const Dist&) const = default;
  } dist;

  int crop() const { return data.crop > 0 ? data.crop : model.input_size; }
  int fc8() const { return model.fc8_units > 0 ? model.fc8_units : model.num_classes; }

  // Field by field; what config_from_yaml(config_to_yaml(c)) preserves.
  bool operator==(const Config&) const = default;
};

// Reads a YAML file (path may be empty: the defaults), applies the overrides
// ("section.key=value", the value parsed as YAML), checks every key and value, and
// returns the result. Throws alexnet::Error with one line naming file, key, value and
// what was expected; an unknown key names the closest valid one.
// The spatial side of each stage's input and output, conv1 to pool5 in order, for
// model.input_size: the one walk down the stack that the config's check and Net::build share.
// A stage whose window does not fit its input has out = 0, and so do the stages after it.
struct StageSide {
  const char* stage;    // "conv1", "pool1", ..., "pool5"
  int in = 0, out = 0;  // input and output side
  int window = 0, pad = 0;
  const char* window_key;  // the config key of the window: "model.conv2.kernel", "model.pool.size"
};
std::vector<StageSide> stage_sides(const Config::Model& m);

Config load_config(const std::string& path, const std::vector<std::string>& overrides);
// Same from YAML text (a checkpoint's stored config); `origin` names it in messages.
Config config_from_yaml(const std::string& yaml_text, const std::string& origin,
                        const std::vector<std::string>& overrides);
// The resolved config as YAML, every key present; config_from_yaml(config_to_yaml(c)) == c.
std::string config_to_yaml(const Config& c);
// Markdown table of every key: name, default, allowed values, meaning (for the README).
std::string config_reference_markdown();
// Every key, dotted ("model.conv1.filters"), in the order config_to_yaml writes them.
std::vector<std::string> config_keys();

}  // namespace alexnet
