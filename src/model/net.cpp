#include "alexnet/net.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "alexnet/error.h"
#include "alexnet/rng_streams.h"
#include "alexnet/trace.h"
#include "kernels/philox.cuh"
#include "src/comm/exchange.h"

namespace alexnet {

// ---------------------------------------------------------------------------- one tower's state
// Activations are allocated for the batch capacity; the geometry's n says how much is used.
struct Net::Tower {
  // Indices into params_; a layer that reads both halves holds one weight slice per input tower.
  size_t conv1_w = 0, conv1_b = 0, conv2_w = 0, conv2_b = 0, conv3_b = 0, conv4_w = 0, conv4_b = 0,
         conv5_w = 0, conv5_b = 0, fc6_b = 0, fc7_b = 0, fc8_b = 0;
  std::vector<size_t> conv3_w, fc6_w, fc7_w, fc8_w;

  ConvGeom conv1_geom, conv2_geom, conv3_geom, conv4_geom, conv5_geom;
  PoolGeom pool1_geom, pool2_geom, pool5_geom;
  int64_t fc6_in = 0, fc6_out = 0, fc7_out = 0, fc8_out = 0;  // per tower

  // Forward, (N, C, H, W) or (N, units). Each conv and fc tensor holds the layer's output after
  // its activation; lrnK_scale is what LRN's backward pass needs; poolK_argmax (I32, shaped like
  // poolK) where each window's maximum was.
  Tensor conv1, lrn1, lrn1_scale, pool1, pool1_argmax;
  Tensor conv2, lrn2, lrn2_scale, pool2, pool2_argmax;
  Tensor conv3, conv4, conv5, pool5, pool5_argmax;
  Tensor fc6, fc6_dropped, fc7, fc7_dropped;  // the _dropped ones only when dropout is on
  Tensor fc8;                                 // this tower's logits
  // Backward: d_X is the gradient of the loss with respect to X.
  Tensor d_conv1, d_lrn1, d_pool1, d_conv2, d_lrn2, d_pool2, d_conv3, d_conv4, d_conv5, d_pool5,
      d_fc6, d_fc7, d_fc8;
  // This tower's share of the input gradient of a layer that reads both halves, one per input
  // tower; the exchange sums the shares on the tower that owns the input.
  std::vector<Tensor> conv3_input_shares, fc6_input_shares, fc7_input_shares, fc8_input_shares;
};

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
  const int T = towers_, N = capacity_;
  if (N < 1) throw Error("data.batch_size must be at least 1");

  // Per-tower widths (the config gives whole-net widths; it checked divisibility).
  const int f1 = m.conv1.filters / T, f2 = m.conv2.filters / T, f3 = m.conv3.filters / T,
            f4 = m.conv4.filters / T, f5 = m.conv5.filters / T;
  const int u6 = m.fc6_units / T, u7 = m.fc7_units / T, u8 = c.fc8() / T;
  if (c.fc8() % T != 0)
    throw Error("model.num_classes = " + std::to_string(c.fc8()) +
                " must be divisible by model.towers = " + std::to_string(T));

  // Spatial sizes through the stack: conv1 h1, pool1 q1, conv2 h2, pool2 q2, conv3..5 h3..h5,
  // pool5 q5.
  const std::vector<StageSide> sides = stage_sides(m);
  for (const StageSide& s : sides) check_fits(s.stage, s.in, s.window, s.pad, s.window_key);
  const int s0 = m.input_size, h1 = sides[0].out, q1 = sides[1].out, h2 = sides[2].out,
            q2 = sides[3].out, h3 = sides[4].out, h4 = sides[5].out, h5 = sides[6].out,
            q5 = sides[7].out;

  const int64_t k1 = m.conv1.kernel, k2 = m.conv2.kernel, k3 = m.conv3.kernel, k4 = m.conv4.kernel,
                k5 = m.conv5.kernel;
  const int64_t fc6_in = int64_t{f5} * q5 * q5;  // per input tower
  const auto DT = dtype_;

  tower_.resize(static_cast<size_t>(T));
  // Parameters in checkpoint order, each whole tensor's slices together.
  auto both = [&](std::vector<size_t> Tower::*member, const std::string& name,
                  std::vector<int64_t> whole, std::vector<int64_t> slice, int64_t rows_per_tower,
                  int64_t cols_per_input) {
    for (int t = 0; t < T; ++t)
      for (int r = 0; r < T; ++r) {
        add_param(name, whole, slice, t, t * rows_per_tower, r * cols_per_input, false);
        (tower_[static_cast<size_t>(t)].*member).push_back(params_.size() - 1);
      }
  };
  auto own = [&](size_t Tower::*member, const std::string& name, std::vector<int64_t> whole,
                 std::vector<int64_t> slice, bool is_bias) {
    for (int t = 0; t < T; ++t) {
      add_param(name, whole, slice, t, t * slice[0], 0, is_bias);
      tower_[static_cast<size_t>(t)].*member = params_.size() - 1;
    }
  };
  const int64_t F1 = m.conv1.filters, F2 = m.conv2.filters, F3 = m.conv3.filters,
                F4 = m.conv4.filters, F5 = m.conv5.filters, U6 = m.fc6_units, U7 = m.fc7_units,
                U8 = c.fc8();
  own(&Tower::conv1_w, "conv1.weight", {F1, 3, k1, k1}, {f1, 3, k1, k1}, false);
  own(&Tower::conv1_b, "conv1.bias", {F1}, {f1}, true);
  own(&Tower::conv2_w, "conv2.weight", {F2, f1, k2, k2}, {f2, f1, k2, k2}, false);
  own(&Tower::conv2_b, "conv2.bias", {F2}, {f2}, true);
  both(&Tower::conv3_w, "conv3.weight", {F3, F2, k3, k3}, {f3, f2, k3, k3}, f3, f2 * k3 * k3);
  own(&Tower::conv3_b, "conv3.bias", {F3}, {f3}, true);
  own(&Tower::conv4_w, "conv4.weight", {F4, f3, k4, k4}, {f4, f3, k4, k4}, false);
  own(&Tower::conv4_b, "conv4.bias", {F4}, {f4}, true);
  own(&Tower::conv5_w, "conv5.weight", {F5, f4, k5, k5}, {f5, f4, k5, k5}, false);
  own(&Tower::conv5_b, "conv5.bias", {F5}, {f5}, true);
  both(&Tower::fc6_w, "fc6.weight", {U6, T * fc6_in}, {u6, fc6_in}, u6, fc6_in);
  own(&Tower::fc6_b, "fc6.bias", {U6}, {u6}, true);
  both(&Tower::fc7_w, "fc7.weight", {U7, U6}, {u7, u6}, u7, u6);
  own(&Tower::fc7_b, "fc7.bias", {U7}, {u7}, true);
  both(&Tower::fc8_w, "fc8.weight", {U8, U7}, {u8, u7}, u8, u7);
  own(&Tower::fc8_b, "fc8.bias", {U8}, {u8}, true);

  for (int t = 0; t < T; ++t) {
    auto& tw = tower_[static_cast<size_t>(t)];
    const Device D = tower_device(t);  // every tensor of the tower lives there
    tw.conv1_geom = conv_geom(m.conv1, 3, s0, f1);
    tw.pool1_geom = {1, f1, h1, h1, m.pool.size, m.pool.stride};
    tw.conv2_geom = conv_geom(m.conv2, f1, q1, f2);
    tw.pool2_geom = {1, f2, h2, h2, m.pool.size, m.pool.stride};
    tw.conv3_geom = conv_geom(m.conv3, f2, q2, f3);
    tw.conv4_geom = conv_geom(m.conv4, f3, h3, f4);
    tw.conv5_geom = conv_geom(m.conv5, f4, h4, f5);
    tw.pool5_geom = {1, f5, h5, h5, m.pool.size, m.pool.stride};
    tw.fc6_in = fc6_in;
    tw.fc6_out = u6;
    tw.fc7_out = u7;
    tw.fc8_out = u8;

    auto act = [&](int ch, int hw) { return Tensor({N, ch, hw, hw}, DT, D); };
    tw.conv1 = act(f1, h1);
    tw.lrn1 = act(f1, h1);
    tw.lrn1_scale = act(f1, h1);
    tw.pool1 = act(f1, q1);
    tw.conv2 = act(f2, h2);
    tw.lrn2 = act(f2, h2);
    tw.lrn2_scale = act(f2, h2);
    tw.pool2 = act(f2, q2);
    tw.conv3 = act(f3, h3);
    tw.conv4 = act(f4, h4);
    tw.conv5 = act(f5, h5);
    tw.pool5 = act(f5, q5);
    tw.pool1_argmax = Tensor({N, f1, q1, q1}, DType::i32, D);
    tw.pool2_argmax = Tensor({N, f2, q2, q2}, DType::i32, D);
    tw.pool5_argmax = Tensor({N, f5, q5, q5}, DType::i32, D);
    tw.fc6 = Tensor({N, u6}, DT, D);
    tw.fc6_dropped = Tensor({N, u6}, DT, D);
    tw.fc7 = Tensor({N, u7}, DT, D);
    tw.fc7_dropped = Tensor({N, u7}, DT, D);
    tw.fc8 = Tensor({N, u8}, DT, D);

    tw.d_conv1 = act(f1, h1);
    tw.d_lrn1 = act(f1, h1);
    tw.d_pool1 = act(f1, q1);
    tw.d_conv2 = act(f2, h2);
    tw.d_lrn2 = act(f2, h2);
    tw.d_pool2 = act(f2, q2);
    tw.d_conv3 = act(f3, h3);
    tw.d_conv4 = act(f4, h4);
    tw.d_conv5 = act(f5, h5);
    tw.d_pool5 = act(f5, q5);
    tw.d_fc6 = Tensor({N, u6}, DT, D);
    tw.d_fc7 = Tensor({N, u7}, DT, D);
    tw.d_fc8 = Tensor({N, u8}, DT, D);
    for (int r = 0; r < T; ++r) {
      tw.conv3_input_shares.push_back(act(f2, q2));
      tw.fc6_input_shares.push_back(Tensor({N, fc6_in}, DT, D));
      tw.fc7_input_shares.push_back(Tensor({N, u6}, DT, D));
      tw.fc8_input_shares.push_back(Tensor({N, u7}, DT, D));
    }
  }
  // The loss is computed on tower 0's device.
  logits_ = Tensor({N, U8}, DT, device_);
  dlogits_ = Tensor({N, U8}, DT, device_);
  probs_ = Tensor({N, U8}, DT, device_);
  last_images_.resize(static_cast<size_t>(T));
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

// ---------------------------------------------------------------------------- forward
XentResult Net::forward(const Tensor& host_or_device_images, const int32_t* labels, int n,
                        bool train, uint64_t seed, uint64_t step) {
  if (n < 1 || n > capacity_) throw std::logic_error("batch larger than the net's capacity");
  // The loaders of train, eval and predict augment on tower 0's device, so this is a handle; a
  // host batch (tests, tools) is copied here, synchronously. Every tower sees the whole batch.
  const Tensor images = host_or_device_images.to(device_);
  const std::vector<Tensor> tower_images =
      exchange_->broadcast("images", images, images.numel() / images.dim(0) * n);
  exchange_->wait("images");
  const auto& m = config_.model;
  const LrnParams lrn{m.lrn.size, m.lrn.k, m.lrn.alpha, m.lrn.beta, m.lrn.alpha_over_n};
  const double p_drop = train ? m.dropout : 0.0;
  const int T = towers_;
  auto P = [&](size_t i) -> Param& { return params_[i]; };
  auto with_n = [n](auto g) {
    g.n = n;
    return g;
  };
  auto count = [n](const Tensor& t) { return t.numel() / t.dim(0) * n; };
  auto timed = [this](const char* layer, bool backward, auto&& body) {
    LayerClock clock(profile, devices_, layer, backward);
    body();
  };

  // Each tower's layers go to its own queue (on a GPU, a stream: the towers run at once); the
  // exchanges and the loss go to queue 0, which waits for both.
  for (int t = 0; t < T; ++t) {  // conv1, conv2: each tower on its own
    auto& tw = tower_[static_cast<size_t>(t)];
    const ops::QueueScope queue(tower_device(t), t + 1);
    const auto g1 = with_n(tw.conv1_geom), g2 = with_n(tw.conv2_geom);
    timed("conv1", false, [&] {
      ops::conv_forward_activation(activation_, g1, tower_images[static_cast<size_t>(t)],
                                   P(tw.conv1_w).value, &P(tw.conv1_b).value, tw.conv1, 0.0);
    });
    timed("lrn1", false, [&] {
      ops::lrn_forward(lrn, n, g1.k, g1.out_h(), g1.out_w(), tw.conv1, tw.lrn1, tw.lrn1_scale);
    });
    timed("pool1", false, [&] {
      ops::maxpool_forward(with_n(tw.pool1_geom), tw.lrn1, tw.pool1,
                           train ? &tw.pool1_argmax : nullptr);
    });
    timed("conv2", false, [&] {
      ops::conv_forward_activation(activation_, g2, tw.pool1, P(tw.conv2_w).value,
                                   &P(tw.conv2_b).value, tw.conv2, 0.0);
    });
    timed("lrn2", false, [&] {
      ops::lrn_forward(lrn, n, g2.k, g2.out_h(), g2.out_w(), tw.conv2, tw.lrn2, tw.lrn2_scale);
    });
    timed("pool2", false, [&] {
      ops::maxpool_forward(with_n(tw.pool2_geom), tw.lrn2, tw.pool2,
                           train ? &tw.pool2_argmax : nullptr);
    });
  }

  std::vector<Tensor> own(static_cast<size_t>(T));
  auto gather = [&](const char* layer, Tensor Tower::*member) {
    wait_for_other_towers();
    for (int t = 0; t < T; ++t)
      own[static_cast<size_t>(t)] = tower_[static_cast<size_t>(t)].*member;
    auto views = exchange_->all_gather(layer, own, count(own[0]));
    exchange_->wait(layer);
    gathered_[layer] = views;  // backward reads the same inputs: no second exchange
    return views;
  };

  const auto in3 = gather("conv3", &Tower::pool2);
  for (int t = 0; t < T; ++t) {  // conv3 reads both halves; conv4 and conv5 their own
    auto& tw = tower_[static_cast<size_t>(t)];
    const ops::QueueScope queue(tower_device(t), t + 1);
    {
      LayerClock clock(profile, devices_, "conv3", false);
      // One convolution per input half, accumulated; the last one applies the activation.
      for (int r = 0; r < T; ++r) {
        const Tensor& x = in3[static_cast<size_t>(t)][static_cast<size_t>(r)];
        const Tensor& w = P(tw.conv3_w[static_cast<size_t>(r)]).value;
        const Tensor* bias = r == 0 ? &P(tw.conv3_b).value : nullptr;
        const double beta = r == 0 ? 0.0 : 1.0;
        if (r == T - 1)
          ops::conv_forward_activation(activation_, with_n(tw.conv3_geom), x, w, bias, tw.conv3,
                                       beta);
        else
          ops::conv_forward(with_n(tw.conv3_geom), x, w, bias, tw.conv3, beta);
      }
    }
    {
      LayerClock clock(profile, devices_, "conv4", false);
      ops::conv_forward_activation(activation_, with_n(tw.conv4_geom), tw.conv3,
                                   P(tw.conv4_w).value, &P(tw.conv4_b).value, tw.conv4, 0.0);
    }
    {
      LayerClock clock(profile, devices_, "conv5", false);
      ops::conv_forward_activation(activation_, with_n(tw.conv5_geom), tw.conv4,
                                   P(tw.conv5_w).value, &P(tw.conv5_b).value, tw.conv5, 0.0);
    }
    timed("pool5", false, [&] {
      ops::maxpool_forward(with_n(tw.pool5_geom), tw.conv5, tw.pool5,
                           train ? &tw.pool5_argmax : nullptr);
    });
  }

  // The fully-connected layers all read both halves.
  auto fc = [&](const char* layer, int index, Tensor Tower::*input, std::vector<size_t> Tower::*w,
                size_t Tower::*b, Tensor Tower::*out, Tensor Tower::*dropped) {
    const auto in = gather(layer, input);
    for (int t = 0; t < T; ++t) {
      const ops::QueueScope queue(tower_device(t), t + 1);
      LayerClock clock(profile, devices_, layer, false);
      auto& tw = tower_[static_cast<size_t>(t)];
      Tensor& y = tw.*out;
      for (int r = 0; r < T; ++r)
        ops::fc_forward(n, in[static_cast<size_t>(t)][static_cast<size_t>(r)],
                        P((tw.*w)[static_cast<size_t>(r)]).value,
                        r == 0 ? &P(tw.*b).value : nullptr, y, r == 0 ? 0.0 : 1.0);
      if (!dropped) continue;  // fc8: logits
      ops::activation_forward(activation_, count(y), y);
      if (p_drop > 0) {
        const DropoutParams d{p_drop, seed, step,
                              rng::kDropout + static_cast<uint32_t>(16 * index + t)};
        ops::dropout_forward(d, count(y), y, tw.*dropped);
      }
    }
  };
  // Without dropout (inference, or p = 0) the next layer reads the activations themselves.
  const bool dropping = p_drop > 0;
  fc("fc6", 6, &Tower::pool5, &Tower::fc6_w, &Tower::fc6_b, &Tower::fc6, &Tower::fc6_dropped);
  fc("fc7", 7, dropping ? &Tower::fc6_dropped : &Tower::fc6, &Tower::fc7_w, &Tower::fc7_b,
     &Tower::fc7, &Tower::fc7_dropped);
  fc("fc8", 8, dropping ? &Tower::fc7_dropped : &Tower::fc7, &Tower::fc8_w, &Tower::fc8_b,
     &Tower::fc8, nullptr);

  // The logits of all towers meet on tower 0's device for one softmax over every class.
  const auto tower_logits = gather("logits", &Tower::fc8);
  for (int t = 0; t < T; ++t)
    ops::copy_into_columns(n, tower_logits[0][static_cast<size_t>(t)], logits_,
                           t * tower_[static_cast<size_t>(t)].fc8_out);
  XentResult result;
  timed("loss", false, [&] {
    result = train ? ops::softmax_xent(n, logits_, labels, &dlogits_, nullptr)
                   : ops::softmax_xent(n, logits_, labels, nullptr, &probs_);
  });
  exchange_->check();  // an exchange that failed under the loss: say so, not "diverged"
  have_training_forward_ = train;
  last_images_ = tower_images;  // conv1's weight gradient needs them (handles, not copies)
  last_n_ = n;
  last_seed_ = seed;
  last_step_ = step;
  return result;
}

// ---------------------------------------------------------------------------- backward
void Net::backward() {
  if (!have_training_forward_) throw std::logic_error("backward() without a training forward()");
  have_training_forward_ = false;
  const auto& m = config_.model;
  const LrnParams lrn{m.lrn.size, m.lrn.k, m.lrn.alpha, m.lrn.beta, m.lrn.alpha_over_n};
  const int n = last_n_, T = towers_;
  const double p_drop = m.dropout;
  auto P = [&](size_t i) -> Param& { return params_[i]; };
  auto with_n = [n](auto g) {
    g.n = n;
    return g;
  };
  auto count = [n](const Tensor& t) { return t.numel() / t.dim(0) * n; };
  auto tower = [&](int t) -> Tower& { return tower_[static_cast<size_t>(t)]; };
  auto timed = [this](const char* layer, bool backward, auto&& body) {
    LayerClock clock(profile, devices_, layer, backward);
    body();
  };
  auto at = [](auto& v, int i) -> auto& {
    return v[static_cast<size_t>(i)];
  };

  // Each tower takes its columns of the loss gradient, sent from tower 0's device.
  const std::vector<Tensor> dlogits = exchange_->broadcast("logits", dlogits_, count(dlogits_));
  exchange_->wait("logits");
  for (int t = 0; t < T; ++t)
    ops::copy_from_columns(n, at(dlogits, t), t * tower(t).fc8_out, tower(t).d_fc8);

  // A fully-connected layer reading both halves: weight gradients per input slice, and every
  // tower's share of each input gradient, summed on the owner by the exchange.
  std::vector<std::vector<Tensor>> partial(static_cast<size_t>(T));
  std::vector<Tensor> summed(static_cast<size_t>(T));
  auto fc_back = [&](const char* layer, int index, Tensor Tower::*dy, std::vector<size_t> Tower::*w,
                     size_t Tower::*b, std::vector<Tensor> Tower::*part, Tensor Tower::*dx,
                     Tensor Tower::*dx_act) {
    const auto& in = gathered_.at(layer);  // the inputs the training forward gathered
    // The input-gradient shares first, so that their exchange runs while the towers compute
    // their weight gradients (on two GPUs; elsewhere the order changes no number).
    for (int t = 0; t < T; ++t) {
      const ops::QueueScope queue(tower_device(t), t + 1);
      LayerClock clock(profile, devices_, layer, true);
      auto& tw = tower(t);
      for (int r = 0; r < T; ++r)
        ops::fc_backward_data(n, tw.*dy, P(at(tw.*w, r)).value, at(tw.*part, r), 0.0);
      at(partial, t) = tw.*part;
      at(summed, t) = tw.*dx;
    }
    exchange_->reduce_scatter(layer, partial, summed, count(at(summed, 0)));
    for (int t = 0; t < T; ++t) {
      const ops::QueueScope queue(tower_device(t), t + 1);
      LayerClock clock(profile, devices_, layer, true);
      auto& tw = tower(t);
      for (int r = 0; r < T; ++r)
        ops::fc_backward_weights(n, at(at(in, t), r), tw.*dy, P(at(tw.*w, r)).grad,
                                 r == 0 ? &P(tw.*b).grad : nullptr, 0.0);
    }
    exchange_->wait(layer);
    if (!dx_act) return;
    // Through the previous layer's dropout and activation (in place on the gradient).
    for (int t = 0; t < T; ++t) {
      const ops::QueueScope queue(tower_device(t), t + 1);
      LayerClock clock(profile, devices_, layer, true);
      auto& tw = tower(t);
      Tensor& g = tw.*dx;
      if (p_drop > 0) {
        const DropoutParams d{p_drop, last_seed_, last_step_,
                              rng::kDropout + static_cast<uint32_t>(16 * (index - 1) + t)};
        ops::dropout_backward(d, count(g), g);
      }
      ops::activation_backward(activation_, count(g), tw.*dx_act, g);
    }
  };
  fc_back("fc8", 8, &Tower::d_fc8, &Tower::fc8_w, &Tower::fc8_b, &Tower::fc8_input_shares,
          &Tower::d_fc7, &Tower::fc7);
  fc_back("fc7", 7, &Tower::d_fc7, &Tower::fc7_w, &Tower::fc7_b, &Tower::fc7_input_shares,
          &Tower::d_fc6, &Tower::fc6);
  fc_back("fc6", 6, &Tower::d_fc6, &Tower::fc6_w, &Tower::fc6_b, &Tower::fc6_input_shares,
          &Tower::d_pool5, nullptr);

  for (int t = 0; t < T; ++t) {  // conv5, conv4 (own), then conv3's weights and shares
    auto& tw = tower(t);
    const ops::QueueScope queue(tower_device(t), t + 1);
    timed("pool5", true, [&] {
      ops::maxpool_backward(with_n(tw.pool5_geom), tw.pool5_argmax, tw.d_pool5, tw.d_conv5);
    });
    {
      LayerClock clock(profile, devices_, "conv5", true);
      ops::activation_backward(activation_, count(tw.conv5), tw.conv5, tw.d_conv5);
      ops::conv_backward_filter(with_n(tw.conv5_geom), tw.conv4, tw.d_conv5, P(tw.conv5_w).grad,
                                &P(tw.conv5_b).grad, 0.0);
      ops::conv_backward_data(with_n(tw.conv5_geom), tw.d_conv5, P(tw.conv5_w).value, tw.d_conv4,
                              0.0);
    }
    {
      LayerClock clock(profile, devices_, "conv4", true);
      ops::activation_backward(activation_, count(tw.conv4), tw.conv4, tw.d_conv4);
      ops::conv_backward_filter(with_n(tw.conv4_geom), tw.conv3, tw.d_conv4, P(tw.conv4_w).grad,
                                &P(tw.conv4_b).grad, 0.0);
      ops::conv_backward_data(with_n(tw.conv4_geom), tw.d_conv4, P(tw.conv4_w).value, tw.d_conv3,
                              0.0);
    }
  }
  {
    const auto& in = gathered_.at("conv3");
    // As in fc_back: the shares of the input gradient, their exchange, then the filter
    // gradients while it runs.
    for (int t = 0; t < T; ++t) {
      const ops::QueueScope queue(tower_device(t), t + 1);
      LayerClock clock(profile, devices_, "conv3", true);
      auto& tw = tower(t);
      ops::activation_backward(activation_, count(tw.conv3), tw.conv3, tw.d_conv3);
      for (int r = 0; r < T; ++r)
        ops::conv_backward_data(with_n(tw.conv3_geom), tw.d_conv3, P(at(tw.conv3_w, r)).value,
                                at(tw.conv3_input_shares, r), 0.0);
      at(partial, t) = tw.conv3_input_shares;
      at(summed, t) = tw.d_pool2;
    }
    exchange_->reduce_scatter("conv3", partial, summed, count(tower(0).d_pool2));
    for (int t = 0; t < T; ++t) {
      const ops::QueueScope queue(tower_device(t), t + 1);
      LayerClock clock(profile, devices_, "conv3", true);
      auto& tw = tower(t);
      for (int r = 0; r < T; ++r)
        ops::conv_backward_filter(with_n(tw.conv3_geom), at(at(in, t), r), tw.d_conv3,
                                  P(at(tw.conv3_w, r)).grad, r == 0 ? &P(tw.conv3_b).grad : nullptr,
                                  0.0);
    }
    exchange_->wait("conv3");
  }

  for (int t = 0; t < T; ++t) {  // conv2, conv1: own again
    auto& tw = tower(t);
    const ops::QueueScope queue(tower_device(t), t + 1);
    const auto g1 = with_n(tw.conv1_geom), g2 = with_n(tw.conv2_geom);
    timed("pool2", true, [&] {
      ops::maxpool_backward(with_n(tw.pool2_geom), tw.pool2_argmax, tw.d_pool2, tw.d_lrn2);
    });
    timed("lrn2", true, [&] {
      ops::lrn_backward(lrn, n, g2.k, g2.out_h(), g2.out_w(), tw.conv2, tw.lrn2, tw.lrn2_scale,
                        tw.d_lrn2, tw.d_conv2);
    });
    timed("conv2", true, [&] {
      ops::activation_backward(activation_, count(tw.conv2), tw.conv2, tw.d_conv2);
      ops::conv_backward_filter(g2, tw.pool1, tw.d_conv2, P(tw.conv2_w).grad, &P(tw.conv2_b).grad,
                                0.0);
      ops::conv_backward_data(g2, tw.d_conv2, P(tw.conv2_w).value, tw.d_pool1, 0.0);
    });
    timed("pool1", true, [&] {
      ops::maxpool_backward(with_n(tw.pool1_geom), tw.pool1_argmax, tw.d_pool1, tw.d_lrn1);
    });
    timed("lrn1", true, [&] {
      ops::lrn_backward(lrn, n, g1.k, g1.out_h(), g1.out_w(), tw.conv1, tw.lrn1, tw.lrn1_scale,
                        tw.d_lrn1, tw.d_conv1);
    });
    timed("conv1", true, [&] {
      ops::activation_backward(activation_, count(tw.conv1), tw.conv1, tw.d_conv1);
      // conv1's input is the image: no gradient needed there.
      ops::conv_backward_filter(g1, at(last_images_, t), tw.d_conv1, P(tw.conv1_w).grad,
                                &P(tw.conv1_b).grad, 0.0);
    });
  }
}

// ---------------------------------------------------------------------------- the exchanges
std::vector<ExchangePoint> Net::exchange_table() const {
  const auto& tw = tower_.front();
  const int64_t T = towers_, N = capacity_, es = static_cast<int64_t>(dtype_size(dtype_));
  // An all-gather (or reduce-scatter) of a per-tower tensor of `e` elements per sample: every
  // tower receives the other towers' tensors (or shares).
  auto both_ways = [&](int64_t e) { return T * (T - 1) * e * N * es; };
  const auto& c1 = tw.conv1_geom;
  const int64_t image = int64_t{3} * c1.h * c1.w,
                q2 = int64_t{tw.conv3_geom.c} * tw.conv3_geom.h * tw.conv3_geom.w;
  const int64_t classes = tw.fc8_out * T;
  return {
      {"images", "broadcast of the batch", (T - 1) * image * N * es, "", 0},
      {"conv3", "all-gather of pool2's output", both_ways(q2),
       "reduce-scatter of its input gradient", both_ways(q2)},
      {"fc6", "all-gather of pool5's output", both_ways(tw.fc6_in),
       "reduce-scatter of its input gradient", both_ways(tw.fc6_in)},
      {"fc7", "all-gather of fc6's output", both_ways(tw.fc6_out),
       "reduce-scatter of its input gradient", both_ways(tw.fc6_out)},
      {"fc8", "all-gather of fc7's output", both_ways(tw.fc7_out),
       "reduce-scatter of its input gradient", both_ways(tw.fc7_out)},
      {"logits", "all-gather of the logits", both_ways(tw.fc8_out),
       "broadcast of the loss gradient", (T - 1) * classes * N * es},
  };
}

// ---------------------------------------------------------------------------- the table
std::vector<LayerInfo> Net::layer_table() const {
  const auto& tw = tower_.front();
  const int T = towers_;
  std::vector<LayerInfo> out;
  auto params_of = [&](const std::string& layer) {
    int64_t sum = 0;
    for (const auto& [name, shape] : whole_tensors())
      if (name.rfind(layer + ".", 0) == 0) sum += product(shape);
    return sum;
  };
  auto conv = [&](const char* name, const ConvGeom& g, int inputs) {
    const double flops = 2.0 * g.k * g.c * g.r * g.s * g.out_h() * g.out_w() * inputs * T;
    out.push_back({name, dims(g.k * T, g.out_h(), g.out_w()), params_of(name), flops});
  };
  conv("conv1", tw.conv1_geom, 1);
  conv("conv2", tw.conv2_geom, 1);
  conv("conv3", tw.conv3_geom, T);
  conv("conv4", tw.conv4_geom, 1);
  conv("conv5", tw.conv5_geom, 1);
  auto fc = [&](const char* name, int64_t in_per_tower, int64_t out_per_tower) {
    const double flops = 2.0 * static_cast<double>(in_per_tower * T * out_per_tower * T);
    out.push_back({name, std::to_string(out_per_tower * T), params_of(name), flops});
  };
  fc("fc6", tw.fc6_in, tw.fc6_out);
  fc("fc7", tw.fc6_out, tw.fc7_out);
  fc("fc8", tw.fc7_out, tw.fc8_out);
  return out;
}

}  // namespace alexnet
