#include "alexnet/net.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <functional>
#include <stdexcept>

#include "alexnet/error.h"
#include "alexnet/rng_streams.h"
#include "alexnet/trace.h"
#include "kernels/philox.cuh"
#include "src/comm/exchange.h"

namespace alexnet {

// ---------------------------------------------------------------------------- the stages
// What every stage of one forward or backward pass works with.
struct Net::Pass {
  int n = 0;  // samples in the batch (the tensors hold the batch capacity)
  Activation activation = Activation::relu;
  bool train = false;
  double p_drop = 0;            // dropout probability: 0 at inference
  uint64_t seed = 0, step = 0;  // key the dropout masks
  BatchSlice slice;             // a rank's share of a larger batch, or the whole batch

  int64_t count(const Tensor& t) const { return t.numel() / t.dim(0) * n; }
  template <class Geom>
  Geom with_n(Geom g) const {
    g.n = n;
    return g;
  }
};

// One layer as every tower runs it, each on its own share of the channels: conv1, lrn1, pool1,
// ..., fc8 (Net::build lists them). Net::forward walks the stages in order, Net::backward in
// reverse; a stage that reads every tower's output gets it gathered by the exchange first, and
// its input gradient goes back through the exchange, summed on the owners.
struct Net::Stage {
  enum class Kind { conv, lrn, pool, fc };

  // What one tower holds of the stage. Tensors are (N, C, H, W) or (N, units), allocated for the
  // batch capacity.
  struct Tower {
    // Indices into Net::params_: one weight slice per input tower (the slices of a stage that
    // reads every tower are summed over), and the bias.
    std::vector<size_t> weight;
    size_t bias = 0;
    Tensor out;    // the output, after the activation for conv and fc
    Tensor d_out;  // the gradient of the loss with respect to what the next stage read of out
    // What backward needs besides, by kind.
    Tensor lrn_scale;    // lrn: the denominator's base, k + alpha * sum of squares
    Tensor pool_argmax;  // pool (I32, shaped like out): where each window's maximum was
    Tensor dropped;      // fc with dropout: out after dropout, what the next stage reads
    // A stage reading every tower: this tower's share of the gradient of each input tower's
    // tensor, summed on the owner by the exchange.
    std::vector<Tensor> input_shares;
    // The last forward's input: one tensor, or one per input tower; handles, not copies, so
    // backward reads what forward read.
    std::vector<Tensor> in;
  };

  Kind kind = Kind::conv;
  std::string name;               // "conv3": in profiles, traces and exchanges
  bool reads_all_towers = false;  // conv3, fc6, fc7, fc8
  bool activation = false;        // every conv, fc6, fc7 (fc8 gives the logits)
  bool dropout = false;           // fc6, fc7, at training
  uint32_t number = 0;            // fc6 -> 6: keys its dropout masks
  ConvGeom conv;                  // conv, per tower
  LrnParams lrn;
  PoolGeom pool;
  std::vector<Tower> towers;

  bool has_weights() const { return kind == Kind::conv || kind == Kind::fc; }
  // What the next stage reads of tower t in this pass.
  const Tensor& next_input(int t, const Pass& p) const {
    const Tower& tw = at(t);
    return dropout && p.p_drop > 0 ? tw.dropped : tw.out;
  }
  Tower& at(int t) { return towers[static_cast<size_t>(t)]; }
  const Tower& at(int t) const { return towers[static_cast<size_t>(t)]; }
  DropoutParams dropout_params(int t, const Pass& p) const {
    const Tensor& out = at(t).out;
    return {p.p_drop, p.seed, p.step, rng::kDropout + 16 * number + static_cast<uint32_t>(t),
            p.slice.first * (out.numel() / out.dim(0))};
  }

  // Tower t's output from its `in`.
  void forward(int t, std::vector<Param>& params, const Pass& p);
  // Backward, first half: d_out back through the stage's dropout and activation (in place), then
  // the gradient with respect to each input into d_in[r] (none for the first stage).
  void backward_input(int t, std::vector<Param>& params, std::vector<Tensor>& d_in, const Pass& p);
  // Backward, second half: the weight and bias gradients, from `in` and d_out.
  void backward_weights(int t, std::vector<Param>& params, const Pass& p);
};

// The three passes of a stage, one case per kind; a new kind of layer is a case in each of these
// and a line in Net::build.
void Net::Stage::forward(int t, std::vector<Param>& params, const Pass& p) {
  Tower& tw = at(t);
  auto value = [&](size_t i) -> const Tensor& { return params[i].value; };
  const size_t inputs = tw.in.size();
  switch (kind) {
    case Kind::conv: {
      // One convolution per input tower, accumulated; the last one applies the activation.
      const ConvGeom g = p.with_n(conv);
      for (size_t r = 0; r < inputs; ++r) {
        const Tensor* bias = r == 0 ? &value(tw.bias) : nullptr;
        const double beta = r == 0 ? 0.0 : 1.0;
        if (r + 1 == inputs)
          ops::conv_forward_activation(p.activation, g, tw.in[r], value(tw.weight[r]), bias, tw.out,
                                       beta);
        else
          ops::conv_forward(g, tw.in[r], value(tw.weight[r]), bias, tw.out, beta);
      }
      return;
    }
    case Kind::lrn:
      ops::lrn_forward(lrn, p.n, static_cast<int>(tw.out.dim(1)), static_cast<int>(tw.out.dim(2)),
                       static_cast<int>(tw.out.dim(3)), tw.in[0], tw.out, tw.lrn_scale);
      return;
    case Kind::pool:
      ops::maxpool_forward(p.with_n(pool), tw.in[0], tw.out, p.train ? &tw.pool_argmax : nullptr);
      return;
    case Kind::fc:
      for (size_t r = 0; r < inputs; ++r)
        ops::fc_forward(p.n, tw.in[r], value(tw.weight[r]), r == 0 ? &value(tw.bias) : nullptr,
                        tw.out, r == 0 ? 0.0 : 1.0);
      if (activation) ops::activation_forward(p.activation, p.count(tw.out), tw.out);
      if (dropout && p.p_drop > 0)
        ops::dropout_forward(dropout_params(t, p), p.count(tw.out), tw.out, tw.dropped);
      return;
  }
}

void Net::Stage::backward_input(int t, std::vector<Param>& params, std::vector<Tensor>& d_in,
                                const Pass& p) {
  Tower& tw = at(t);
  auto value = [&](size_t i) -> const Tensor& { return params[i].value; };
  if (dropout && p.p_drop > 0)
    ops::dropout_backward(dropout_params(t, p), p.count(tw.d_out), tw.d_out);
  if (activation) ops::activation_backward(p.activation, p.count(tw.out), tw.out, tw.d_out);
  switch (kind) {
    case Kind::conv:
      for (size_t r = 0; r < d_in.size(); ++r)
        ops::conv_backward_data(p.with_n(conv), tw.d_out, value(tw.weight[r]), d_in[r], 0.0);
      return;
    case Kind::lrn:
      ops::lrn_backward(lrn, p.n, static_cast<int>(tw.out.dim(1)), static_cast<int>(tw.out.dim(2)),
                        static_cast<int>(tw.out.dim(3)), tw.in[0], tw.out, tw.lrn_scale, tw.d_out,
                        d_in[0]);
      return;
    case Kind::pool:
      ops::maxpool_backward(p.with_n(pool), tw.pool_argmax, tw.d_out, d_in[0]);
      return;
    case Kind::fc:
      for (size_t r = 0; r < d_in.size(); ++r)
        ops::fc_backward_data(p.n, tw.d_out, value(tw.weight[r]), d_in[r], 0.0);
      return;
  }
}

void Net::Stage::backward_weights(int t, std::vector<Param>& params, const Pass& p) {
  Tower& tw = at(t);
  auto grad = [&](size_t i) -> Tensor& { return params[i].grad; };
  for (size_t r = 0; r < tw.in.size(); ++r) {
    Tensor* bias = r == 0 ? &grad(tw.bias) : nullptr;
    if (kind == Kind::conv)
      ops::conv_backward_filter(p.with_n(conv), tw.in[r], tw.d_out, grad(tw.weight[r]), bias, 0.0);
    else if (kind == Kind::fc)
      ops::fc_backward_weights(p.n, tw.in[r], tw.d_out, grad(tw.weight[r]), bias, 0.0);
  }
}

LayerTime& Profile::operator[](const std::string& layer) {
  for (auto& l : layers)
    if (l.layer == layer) return l;
  layers.push_back({layer, 0, 0});
  return layers.back();
}

namespace {

using Clock = std::chrono::steady_clock;

// Marks one layer's pass on a profiler's timeline (NVTX), and adds its time to the profile when
// profiling. On a GPU the profile waits for the device before and after, so the layer's kernels
// are timed alone (profiling serialises the towers; alexnet-bench times whole steps without
// it); the NVTX range waits for nothing.
class LayerClock {
 public:
  LayerClock(Profile* p, const std::vector<Device>& devices, const char* layer, bool backward)
      : trace_(layer, backward ? "backward" : nullptr),
        profile_(p),
        devices_(devices),
        layer_(layer),
        backward_(backward) {
    if (profile_)
      for (const Device& d : devices_) ops::synchronize(d);
    start_ = Clock::now();
  }
  ~LayerClock() {
    if (!profile_) return;
    for (const Device& d : devices_) ops::synchronize(d);
    const double s = std::chrono::duration<double>(Clock::now() - start_).count();
    auto& t = (*profile_)[layer_];
    (backward_ ? t.backward : t.forward) += s;
  }
  LayerClock(const LayerClock&) = delete;
  LayerClock& operator=(const LayerClock&) = delete;

 private:
  TraceRange trace_;
  Profile* profile_;
  const std::vector<Device>& devices_;
  const char* layer_;
  bool backward_;
  Clock::time_point start_;
};

std::string dims(int c, int h, int w) {
  return std::to_string(c) + "x" + std::to_string(h) + "x" + std::to_string(w);
}

ConvGeom conv_geom(const ConvLayerConfig& l, int in_c, int in_hw, int out_c) {
  ConvGeom g;
  g.c = in_c;
  g.h = g.w = in_hw;
  g.k = out_c;
  g.r = g.s = l.kernel;
  g.stride = l.stride;
  g.pad = l.pad;
  return g;
}

// The input side of a conv layer must fit its kernel; say which key to change when not.
void check_fits(const char* layer, int in_hw, int window, int pad, const char* key) {
  if (in_hw + 2 * pad < window)
    throw Error("model.input_size is too small for this network: " + std::string(layer) +
                " gets a " + std::to_string(in_hw) + "x" + std::to_string(in_hw) +
                " input (padded by " + std::to_string(pad) + "), smaller than its " +
                std::to_string(window) + "x" + std::to_string(window) + " window (" + key + ")");
}

int64_t product(const std::vector<int64_t>& v) {
  int64_t p = 1;
  for (auto d : v) p *= d;
  return p;
}

}  // namespace

// ---------------------------------------------------------------------------- construction
Net::Net(const Config& config, int batch_capacity, DType dtype, Device device)
    : Net(config, batch_capacity, dtype,
          std::vector<Device>(static_cast<size_t>(std::max(config.model.towers, 1)), device),
          make_local_exchange(std::max(config.model.towers, 1))) {}

Net::Net(const Config& config, int batch_capacity, DType dtype, std::vector<Device> devices,
         std::unique_ptr<Exchange> exchange)
    : config_(config),
      capacity_(batch_capacity),
      dtype_(dtype),
      devices_(std::move(devices)),
      device_(devices_.empty() ? Device{} : devices_.front()),
      exchange_(std::move(exchange)) {
  if (static_cast<int>(devices_.size()) != config.model.towers)
    throw std::logic_error("Net: one device per tower expected");
  if (!exchange_) throw std::logic_error("Net: no exchange");
  for (const Device& d : devices_) {
    if (!d.is_cpu() && dtype_ != DType::f32)
      throw Error(std::string("a ") + dtype_name(dtype_) + " network on " + d.str() +
                  ": the CUDA backend is F32 only (F64 runs on the CPU)");
    single_device_ = single_device_ && d == device_;
  }
  build(config);
}

Net::~Net() = default;

Param& Net::add_param(const std::string& name, std::vector<int64_t> whole_shape,
                      std::vector<int64_t> slice_shape, int tower, int64_t row0, int64_t col0,
                      bool is_bias) {
  Param p;
  p.name = name;
  p.whole_shape = std::move(whole_shape);
  p.tower = tower;
  p.rows = slice_shape[0];
  p.cols = product(slice_shape) / slice_shape[0];
  p.row0 = row0;
  p.col0 = col0;
  p.is_bias = is_bias;
  const Device d = tower_device(tower);
  p.value = Tensor(slice_shape, dtype_, d);
  p.grad = Tensor(slice_shape, dtype_, d);
  p.momentum = Tensor(slice_shape, dtype_, d);
  params_.push_back(std::move(p));
  return params_.back();
}

void Net::build(const Config& c) {
  const auto& m = c.model;
  towers_ = m.towers;
  classes_ = m.num_classes;
  input_size_ = m.input_size;
  activation_ = m.activation == "tanh" ? Activation::tanh : Activation::relu;
  const int T = towers_;
  const int64_t N = capacity_;
  if (N < 1) throw Error("data.batch_size must be at least 1");
  if (c.fc8() % T != 0)
    throw Error("model.num_classes = " + std::to_string(c.fc8()) +
                " must be divisible by model.towers = " + std::to_string(T));
  for (const StageSide& s : stage_sides(m))
    check_fits(s.stage, s.in, s.window, s.pad, s.window_key);

  // What one sample of one tower looks like where the next stage reads it: (C, H, W) or (units).
  // The config gives whole-net widths (and checked that the towers divide them).
  std::vector<int64_t> shape = {3, m.input_size, m.input_size};
  auto batch_of = [&](const std::vector<int64_t>& sample) {
    std::vector<int64_t> s = {N};
    s.insert(s.end(), sample.begin(), sample.end());
    return s;
  };
  auto add_stage = [&](Stage::Kind kind, const char* name, bool reads_all_towers) -> Stage& {
    Stage& s = stages_.emplace_back();
    s.kind = kind;
    s.name = name;
    s.reads_all_towers = reads_all_towers;
    s.towers.resize(static_cast<size_t>(T));
    if (reads_all_towers)
      for (int t = 0; t < T; ++t)
        for (int r = 0; r < T; ++r)
          s.at(t).input_shares.emplace_back(batch_of(shape), dtype_, tower_device(t));
    return s;
  };
  // The stage's output and its gradient, `sample` per sample in every tower; `shape` moves on.
  auto add_output = [&](Stage& s, const std::vector<int64_t>& sample) {
    shape = sample;
    for (int t = 0; t < T; ++t) {
      s.at(t).out = Tensor(batch_of(shape), dtype_, tower_device(t));
      s.at(t).d_out = Tensor(batch_of(shape), dtype_, tower_device(t));
    }
  };
  // "<name>.weight" and "<name>.bias", each tower's slices of them in checkpoint order. `slice`
  // is one tower's weight for one input tower: the whole tensor stacks the towers' rows and,
  // for a stage reading every tower, the input towers' columns side by side.
  auto add_weights = [&](Stage& s, std::vector<int64_t> slice) {
    const int inputs = s.reads_all_towers ? T : 1;
    std::vector<int64_t> whole = slice;
    whole[0] *= T;
    whole[1] *= inputs;
    const int64_t cols_per_input = product(slice) / slice[0];
    for (int t = 0; t < T; ++t)
      for (int r = 0; r < inputs; ++r) {
        add_param(s.name + ".weight", whole, slice, t, t * slice[0], r * cols_per_input, false);
        s.at(t).weight.push_back(params_.size() - 1);
      }
    for (int t = 0; t < T; ++t) {
      add_param(s.name + ".bias", {whole[0]}, {slice[0]}, t, t * slice[0], 0, true);
      s.at(t).bias = params_.size() - 1;
    }
  };

  auto conv = [&](const char* name, const ConvLayerConfig& l, bool reads_all_towers) {
    Stage& s = add_stage(Stage::Kind::conv, name, reads_all_towers);
    s.activation = true;
    const int in_c = static_cast<int>(shape[0]), in_side = static_cast<int>(shape[1]);
    s.conv = conv_geom(l, in_c, in_side, l.filters / T);
    add_weights(s, {s.conv.k, in_c, l.kernel, l.kernel});
    add_output(s, {s.conv.k, s.conv.out_h(), s.conv.out_w()});
  };
  auto lrn = [&](const char* name) {
    Stage& s = add_stage(Stage::Kind::lrn, name, false);
    s.lrn = {m.lrn.size, m.lrn.k, m.lrn.alpha, m.lrn.beta, m.lrn.alpha_over_n};
    add_output(s, shape);
    for (int t = 0; t < T; ++t)
      s.at(t).lrn_scale = Tensor(batch_of(shape), dtype_, tower_device(t));
  };
  auto pool = [&](const char* name) {
    Stage& s = add_stage(Stage::Kind::pool, name, false);
    const int ch = static_cast<int>(shape[0]), side = static_cast<int>(shape[1]);
    s.pool = {1, ch, side, side, m.pool.size, m.pool.stride};
    add_output(s, {ch, s.pool.out_h(), s.pool.out_w()});
    for (int t = 0; t < T; ++t)
      s.at(t).pool_argmax = Tensor(batch_of(shape), DType::i32, tower_device(t));
  };
  auto fc = [&](const char* name, uint32_t number, int units, bool logits) {
    Stage& s = add_stage(Stage::Kind::fc, name, true);
    s.number = number;
    s.activation = s.dropout = !logits;
    add_weights(s, {units / T, product(shape)});
    add_output(s, {units / T});
    if (s.dropout)
      for (int t = 0; t < T; ++t)
        s.at(t).dropped = Tensor(batch_of(shape), dtype_, tower_device(t));
  };

  // The paper's network (alexnet/net.h). Parameters are made in this order: the checkpoint's.
  conv("conv1", m.conv1, false);
  lrn("lrn1");
  pool("pool1");
  conv("conv2", m.conv2, false);
  lrn("lrn2");
  pool("pool2");
  conv("conv3", m.conv3, true);
  conv("conv4", m.conv4, false);
  conv("conv5", m.conv5, false);
  pool("pool5");
  fc("fc6", 6, m.fc6_units, false);
  fc("fc7", 7, m.fc7_units, false);
  fc("fc8", 8, c.fc8(), true);

  // The loss is computed on tower 0's device.
  const std::vector<int64_t> logits_shape = {N, c.fc8()};
  logits_ = Tensor(logits_shape, dtype_, device_);
  dlogits_ = Tensor(logits_shape, dtype_, device_);
  probs_ = Tensor(logits_shape, dtype_, device_);
}

// ---------------------------------------------------------------------------- initialisation
void Net::init(uint64_t seed) {
  const auto& init = config_.model.init;
  // The paper: weights N(0, 0.01^2); biases 1 in conv2, conv4, conv5, fc6, fc7, else 0.
  auto bias_value = [&](const std::string& name) {
    for (const char* layer : {"conv2.", "conv4.", "conv5.", "fc6.", "fc7."})
      if (name.rfind(layer, 0) == 0) return init.bias_one;
    return 0.0;
  };
  uint32_t tensor_index = 0;
  for (const auto& [name, shape] : whole_tensors()) {
    const int64_t count = product(shape);
    std::vector<double> whole(static_cast<size_t>(count));
    const bool is_bias = shape.size() == 1;
    if (is_bias) {
      std::fill(whole.begin(), whole.end(), bias_value(name));
    } else {
      // He et al.: std = sqrt(2 / fan_in), fan_in = the inputs one output unit sees.
      const double stddev = init.scheme == "kaiming"
                                ? std::sqrt(2.0 / static_cast<double>(count / shape[0]))
                                : init.weight_std;
      for (int64_t i = 0; i < count; i += 2) {
        const kernels::Philox4 bits =
            kernels::philox_draw(seed, 0, rng::kInit + tensor_index, static_cast<uint32_t>(i / 2));
        float z0, z1;
        kernels::box_muller(bits.v[0], bits.v[1], z0, z1);
        whole[static_cast<size_t>(i)] = stddev * z0;
        if (i + 1 < count) whole[static_cast<size_t>(i + 1)] = stddev * z1;
      }
    }
    ++tensor_index;
    if (dtype_ == DType::f64) {
      scatter_whole(name, false, whole.data());
    } else {
      std::vector<float> f(whole.begin(), whole.end());
      scatter_whole(name, false, f.data());
    }
  }
  for (auto& p : params_) p.momentum.zero();
}

std::vector<std::pair<std::string, std::vector<int64_t>>> Net::whole_tensors() const {
  std::vector<std::pair<std::string, std::vector<int64_t>>> out;
  for (const auto& p : params_)
    if (out.empty() || out.back().first != p.name) out.emplace_back(p.name, p.whole_shape);
  return out;
}

std::vector<std::byte> Net::gather_whole(const std::string& name, bool momentum) const {
  const size_t es = dtype_size(dtype_);
  std::vector<std::byte> whole;
  for (const auto& p : params_) {
    if (p.name != name) continue;
    if (whole.empty()) whole.resize(static_cast<size_t>(product(p.whole_shape)) * es);
    const int64_t whole_cols = product(p.whole_shape) / p.whole_shape[0];
    // A host copy of a slice on a GPU (for a CPU net, this very tensor).
    const Tensor host = (momentum ? p.momentum : p.value).to(Device{});
    const auto* src = static_cast<const std::byte*>(host.raw());
    for (int64_t i = 0; i < p.rows; ++i)
      std::memcpy(whole.data() + ((p.row0 + i) * whole_cols + p.col0) * es, src + i * p.cols * es,
                  static_cast<size_t>(p.cols) * es);
  }
  if (whole.empty()) throw std::logic_error("no parameter named " + name);
  return whole;
}

void Net::scatter_whole(const std::string& name, bool momentum, const void* data) {
  const size_t es = dtype_size(dtype_);
  const auto* whole = static_cast<const std::byte*>(data);
  for (auto& p : params_) {
    if (p.name != name) continue;
    const int64_t whole_cols = product(p.whole_shape) / p.whole_shape[0];
    Tensor& target = momentum ? p.momentum : p.value;
    // On a GPU the slice is assembled in host memory and uploaded as a whole; nothing else
    // holds a handle to a parameter's tensor, so the new one simply replaces it.
    const Device d = target.device();
    Tensor host = d.is_cpu() ? target : Tensor(target.shape(), dtype_);
    auto* dst = static_cast<std::byte*>(host.raw());
    for (int64_t i = 0; i < p.rows; ++i)
      std::memcpy(dst + i * p.cols * es, whole + ((p.row0 + i) * whole_cols + p.col0) * es,
                  static_cast<size_t>(p.cols) * es);
    if (!d.is_cpu()) target = host.to(d);
  }
}

// Before a tower reads the other towers' outputs (an all-gather), its queue waits for theirs.
// (The reduce-scatters run on queue 0, which waits for every tower by itself.)
// Towers on different devices are ordered by the exchange itself.
void Net::wait_for_other_towers() {
  if (!single_device_) return;
  for (int t = 0; t < towers_; ++t)
    for (int r = 0; r < towers_; ++r) ops::queue_wait(device_, t + 1, r + 1);
}

std::vector<std::vector<Tensor>> Net::gather(const char* point, const std::vector<Tensor>& own,
                                             int64_t count) {
  wait_for_other_towers();
  auto views = exchange_->all_gather(point, own, count);
  exchange_->wait(point);
  return views;
}

// Each tower's ops go to its own queue (on a GPU, a stream: the towers run at once); the
// exchanges and the loss go to queue 0, which waits for all of them.
void Net::run_towers(const Stage& s, bool backward, const std::function<void(int)>& op) {
  for (int t = 0; t < towers_; ++t) {
    const ops::QueueScope queue(tower_device(t), t + 1);
    const LayerClock clock(profile, devices_, s.name.c_str(), backward);
    op(t);
  }
}

// ---------------------------------------------------------------------------- forward
XentResult Net::forward(const Tensor& host_or_device_images, const int32_t* labels, int n,
                        bool train, uint64_t seed, uint64_t step, BatchSlice slice) {
  if (n < 1 || n > capacity_) throw std::logic_error("batch larger than the net's capacity");
  // The loaders of train, eval and predict augment on tower 0's device, so this is a handle; a
  // host batch (tests, tools) is copied here, synchronously. Every tower sees the whole batch.
  const Tensor images = host_or_device_images.to(device_);
  const std::vector<Tensor> tower_images =
      exchange_->broadcast("images", images, images.numel() / images.dim(0) * n);
  exchange_->wait("images");
  const Pass pass{n, activation_, train, train ? config_.model.dropout : 0.0, seed, step, slice};
  const size_t T = static_cast<size_t>(towers_);

  const Stage* previous = nullptr;
  for (Stage& s : stages_) {
    // Each tower reads the images, or the previous stage's output: its own, or every tower's
    // (gathered; backward reads the same, no second exchange).
    std::vector<Tensor> own(T);
    for (size_t t = 0; t < T; ++t)
      own[t] = previous ? previous->next_input(static_cast<int>(t), pass) : tower_images[t];
    if (s.reads_all_towers) {
      const auto views = gather(s.name.c_str(), own, pass.count(own[0]));
      for (size_t t = 0; t < T; ++t) s.towers[t].in = views[t];
    } else {
      for (size_t t = 0; t < T; ++t) s.towers[t].in = {own[t]};
    }
    run_towers(s, false, [&](int t) { s.forward(t, params_, pass); });
    previous = &s;
  }

  // The logits of all towers meet on tower 0's device for one softmax over every class.
  const Stage& last = stages_.back();
  std::vector<Tensor> own_logits;
  for (const Stage::Tower& tw : last.towers) own_logits.push_back(tw.out);
  const auto tower_logits = gather("logits", own_logits, pass.count(own_logits[0]));
  for (size_t t = 0; t < T; ++t)
    ops::copy_into_columns(n, tower_logits[0][t], logits_,
                           static_cast<int64_t>(t) * own_logits[t].dim(1));
  XentResult result;
  {
    const LayerClock clock(profile, devices_, "loss", false);
    result = train ? ops::softmax_xent(n, logits_, labels, &dlogits_, nullptr, slice.global)
                   : ops::softmax_xent(n, logits_, labels, nullptr, &probs_);
  }
  exchange_->check();  // an exchange that failed under the loss: say so, not "diverged"
  have_training_forward_ = train;
  last_n_ = n;
  last_seed_ = seed;
  last_step_ = step;
  last_slice_ = slice;
  return result;
}

// ---------------------------------------------------------------------------- backward
void Net::backward() {
  if (!have_training_forward_) throw std::logic_error("backward() without a training forward()");
  have_training_forward_ = false;
  const Pass pass{last_n_,    activation_, true,       config_.model.dropout,
                  last_seed_, last_step_,  last_slice_};
  const size_t T = static_cast<size_t>(towers_);

  // Each tower takes its columns of the loss gradient, sent from tower 0's device.
  const std::vector<Tensor> dlogits =
      exchange_->broadcast("logits", dlogits_, pass.count(dlogits_));
  exchange_->wait("logits");
  for (size_t t = 0; t < T; ++t) {
    Tensor& d_fc8 = stages_.back().towers[t].d_out;
    ops::copy_from_columns(pass.n, dlogits[t], static_cast<int64_t>(t) * d_fc8.dim(1), d_fc8);
  }

  std::vector<std::vector<Tensor>> shares(T);
  std::vector<Tensor> summed(T);
  for (size_t i = stages_.size(); i-- > 0;) {
    Stage& s = stages_[i];
    Stage* previous = i > 0 ? &stages_[i - 1] : nullptr;
    // The input gradient first: a stage reading every tower computes each tower's share of it,
    // and the exchange sums the shares on their owners while the towers compute the weight
    // gradients (on two GPUs; elsewhere the order changes no number).
    const bool exchanged = s.reads_all_towers && previous;
    run_towers(s, true, [&](int t) {
      std::vector<Tensor> d_in;
      if (exchanged)
        d_in = s.at(t).input_shares;
      else if (previous)
        d_in = {previous->at(t).d_out};
      s.backward_input(t, params_, d_in, pass);
    });
    if (exchanged) {
      for (size_t t = 0; t < T; ++t) {
        shares[t] = s.towers[t].input_shares;
        summed[t] = previous->towers[t].d_out;
      }
      exchange_->reduce_scatter(s.name.c_str(), shares, summed, pass.count(summed[0]));
    }
    if (s.has_weights()) {
      run_towers(s, true, [&](int t) { s.backward_weights(t, params_, pass); });
      if (on_weight_gradients) on_weight_gradients(s.name);
    }
    if (exchanged) exchange_->wait(s.name.c_str());
  }
}

// ---------------------------------------------------------------------------- the exchanges
std::vector<ExchangePoint> Net::exchange_table() const {
  const int64_t T = towers_, N = capacity_, es = static_cast<int64_t>(dtype_size(dtype_));
  // An all-gather (or reduce-scatter) of a per-tower tensor of `e` elements per sample: every
  // tower receives the other towers' tensors (or shares).
  auto both_ways = [&](int64_t e) { return T * (T - 1) * e * N * es; };
  auto per_sample = [](const Stage& s) {
    return s.towers.front().out.numel() / s.towers.front().out.dim(0);
  };
  const ConvGeom& c1 = stages_.front().conv;
  std::vector<ExchangePoint> out = {
      {"images", "broadcast of the batch", (T - 1) * c1.c * c1.h * c1.w * N * es, "", 0}};
  for (size_t i = 1; i < stages_.size(); ++i) {
    if (!stages_[i].reads_all_towers) continue;
    const int64_t e = per_sample(stages_[i - 1]);
    out.push_back({stages_[i].name, "all-gather of " + stages_[i - 1].name + "'s output",
                   both_ways(e), "reduce-scatter of its input gradient", both_ways(e)});
  }
  const int64_t logits = per_sample(stages_.back());
  out.push_back({"logits", "all-gather of the logits", both_ways(logits),
                 "broadcast of the loss gradient", (T - 1) * logits * T * N * es});
  return out;
}

// ---------------------------------------------------------------------------- the table
std::vector<LayerInfo> Net::layer_table() const {
  const int T = towers_;
  std::vector<LayerInfo> out;
  auto params_of = [&](const std::string& layer) {
    int64_t sum = 0;
    for (const auto& [name, shape] : whole_tensors())
      if (name.rfind(layer + ".", 0) == 0) sum += product(shape);
    return sum;
  };
  for (const Stage& s : stages_) {
    const double inputs = s.reads_all_towers ? T : 1;
    if (s.kind == Stage::Kind::conv) {
      const ConvGeom& g = s.conv;
      const double flops = 2.0 * g.k * g.c * g.r * g.s * g.out_h() * g.out_w() * inputs * T;
      out.push_back({s.name, dims(g.k * T, g.out_h(), g.out_w()), params_of(s.name), flops});
    } else if (s.kind == Stage::Kind::fc) {
      const Param& w = params_[s.towers.front().weight.front()];  // one tower's, one input's
      const double flops = 2.0 * static_cast<double>(w.rows * w.cols) * inputs * T;
      out.push_back({s.name, std::to_string(w.rows * T), params_of(s.name), flops});
    }
  }
  return out;
}

}  // namespace alexnet
