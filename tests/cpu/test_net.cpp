// The whole two-tower network: its gradients against finite differences (in double), and its
// forward pass against an independent whole-tensor computation with grouped convolutions, which
// is what PyTorch would compute from the same checkpoint.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>

#include "alexnet/config.h"
#include "alexnet/cpu_ops.h"
#include "alexnet/net.h"
#include "test_util.h"

namespace alexnet {
namespace {

// 23 -> conv1 21 -> pool 10 -> conv2 10 -> pool 4 -> conv3..5 4 -> pool 1.
Config tiny_config(int towers, const std::string& activation) {
  Config c;
  c.model.towers = towers;
  c.model.num_classes = 4;
  c.model.input_size = 23;
  c.model.activation = activation;
  c.model.conv1 = {4, 3, 1, 0};
  c.model.conv2 = {8, 3, 1, 1};
  c.model.conv3 = {8, 3, 1, 1};
  c.model.conv4 = {8, 3, 1, 1};
  c.model.conv5 = {4, 3, 1, 1};
  c.model.fc6_units = 8;
  c.model.fc7_units = 8;
  c.model.init.scheme = "kaiming";
  c.model.init.bias_one = 0.1;
  c.model.lrn.alpha = 0.05;  // large enough that the normalisation bends the function
  return c;
}

Tensor random_images(int n, int s, DType dtype, uint32_t seed) {
  Tensor t({n, 3, s, s}, dtype);
  const auto v = test::random_vector<double>(static_cast<size_t>(t.numel()), seed);
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (dtype == DType::f64)
      t.data<double>()[i] = v[static_cast<size_t>(i)];
    else
      t.data<float>()[i] = static_cast<float>(v[static_cast<size_t>(i)]);
  }
  return t;
}

void expect_gradients_match_finite_differences(const Config& config) {
  const int n = 3;
  Net net(config, n, DType::f64);
  net.init(11);
  const Tensor images = random_images(n, config.model.input_size, DType::f64, 5);
  const std::vector<int32_t> labels = {0, 3, 2};
  const uint64_t seed = 3, step = 17;  // fixes the dropout masks

  net.forward(images, labels.data(), n, true, seed, step);
  net.backward();
  auto loss = [&] { return net.forward(images, labels.data(), n, true, seed, step).loss_sum / n; };

  int checked = 0;
  for (auto& p : net.params()) {
    double* w = p.value.data<double>();
    const double* g = p.grad.data<double>();
    // Every element of small tensors, a spread of them in larger ones.
    const int64_t stride = std::max<int64_t>(1, p.value.numel() / 40);
    for (int64_t i = 0; i < p.value.numel(); i += stride) {
      const double saved = w[i], eps = 1e-6;
      w[i] = saved + eps;
      const double plus = loss();
      w[i] = saved - eps;
      const double minus = loss();
      w[i] = saved;
      const double numeric = (plus - minus) / (2 * eps);
      EXPECT_NEAR(g[i], numeric, 1e-7 + 1e-5 * std::abs(numeric))
          << p.name << " (tower " << p.tower << ", col0 " << p.col0 << ") element " << i;
      ++checked;
    }
  }
  EXPECT_GT(checked, 300);
}

TEST(Net, TwoTowerReluGradientsMatchFiniteDifferences) {
  expect_gradients_match_finite_differences(tiny_config(2, "relu"));
}

TEST(Net, TwoTowerTanhGradientsMatchFiniteDifferences) {
  expect_gradients_match_finite_differences(tiny_config(2, "tanh"));
}

TEST(Net, OneTowerGradientsMatchFiniteDifferences) {
  expect_gradients_match_finite_differences(tiny_config(1, "relu"));
}

// Evaluation in the middle of training (what alexnet-train does every epoch) must leave the
// training pass untouched: with tanh, whose derivative is read from the activations, a dropout
// buffer left aliased to them by the inference pass once gave wrong gradients.
TEST(Net, AnInferencePassLeavesTheNextTrainingStepUnchanged) {
  for (const char* activation : {"tanh", "relu"}) {
    SCOPED_TRACE(activation);
    const Config c = tiny_config(2, activation);
    const int n = 3;
    const Tensor images = random_images(n, c.model.input_size, DType::f64, 5);
    const std::vector<int32_t> labels = {0, 3, 2};
    auto gradients = [&](bool evaluate_first) {
      Net net(c, n, DType::f64);
      net.init(11);
      if (evaluate_first) net.forward(images, labels.data(), n, false, 0, 0);
      net.forward(images, labels.data(), n, true, 3, 17);
      net.backward();
      std::vector<double> all;
      for (const auto& p : net.params())
        all.insert(all.end(), p.grad.data<double>(), p.grad.data<double>() + p.grad.numel());
      return all;
    };
    EXPECT_EQ(gradients(true), gradients(false));
  }
}

TEST(Net, DropoutOffGradientsMatchFiniteDifferences) {
  auto c = tiny_config(2, "relu");
  c.model.dropout = 0;
  expect_gradients_match_finite_differences(c);
}

// ------------------------------------------------------------------ whole-tensor oracle
std::vector<double> whole(const Net& net, const std::string& name) {
  const auto bytes = net.gather_whole(name, false);
  std::vector<double> v(bytes.size() / sizeof(double));
  std::memcpy(v.data(), bytes.data(), bytes.size());
  return v;
}

// LRN within each tower's block of channels, as the two original GPUs did.
std::vector<double> grouped_lrn(const LrnParams& p, int n, int c, int hw, int groups,
                                const std::vector<double>& x) {
  std::vector<double> y(x.size());
  const int cg = c / groups;
  for (int i = 0; i < n; ++i)
    for (int g = 0; g < groups; ++g) {
      const size_t off = (static_cast<size_t>(i) * c + static_cast<size_t>(g) * cg) * hw * hw;
      cpu::lrn_forward<double>(p, 1, cg, hw, hw, x.data() + off, y.data() + off, nullptr);
    }
  return y;
}

std::vector<double> conv_act(const Net& net, const char* layer, const ConvLayerConfig& l, int n,
                             int c, int hw, int groups, const std::vector<double>& x, int& out_hw) {
  ConvGeom g{n, c, hw, hw, l.filters, l.kernel, l.kernel, l.stride, l.pad, groups};
  out_hw = g.out_h();
  std::vector<double> y(static_cast<size_t>(n) * l.filters * out_hw * out_hw);
  const auto w = whole(net, std::string(layer) + ".weight");
  const auto b = whole(net, std::string(layer) + ".bias");
  cpu::conv_forward<double>(g, x.data(), w.data(), b.data(), y.data(), 0.0);
  cpu::activation_forward<double>(Activation::relu, static_cast<int64_t>(y.size()), y.data(),
                                  y.data());
  return y;
}

std::vector<double> pool(int n, int c, int hw, int& out_hw, const std::vector<double>& x) {
  PoolGeom g{n, c, hw, hw, 3, 2};
  out_hw = g.out_h();
  std::vector<double> y(static_cast<size_t>(n) * c * out_hw * out_hw);
  cpu::maxpool_forward<double>(g, x.data(), y.data(), nullptr);
  return y;
}

std::vector<double> fc(const Net& net, const char* layer, int n, const std::vector<double>& x,
                       bool relu) {
  const auto w = whole(net, std::string(layer) + ".weight");
  const auto b = whole(net, std::string(layer) + ".bias");
  const int out = static_cast<int>(b.size()), in = static_cast<int>(w.size() / b.size());
  std::vector<double> y(static_cast<size_t>(n) * out);
  cpu::fc_forward<double>(n, in, out, x.data(), w.data(), b.data(), y.data(), 0.0);
  if (relu)
    cpu::activation_forward<double>(Activation::relu, static_cast<int64_t>(y.size()), y.data(),
                                    y.data());
  return y;
}

TEST(Net, TowersComputeTheWholeGroupedNetwork) {
  for (int towers : {1, 2}) {
    Config c = tiny_config(towers, "relu");
    c.model.input_size = 31;  // 31 -> 29 -> 14 -> 14 -> 6 -> 6 -> 2
    const int n = 2, T = towers;
    Net net(c, n, DType::f64);
    net.init(4);
    const Tensor images = random_images(n, 31, DType::f64, 9);
    const std::vector<int32_t> labels = {1, 2};
    net.forward(images, labels.data(), n, false, 0, 0);

    const auto& m = c.model;
    const LrnParams lrn{m.lrn.size, m.lrn.k, m.lrn.alpha, m.lrn.beta, m.lrn.alpha_over_n};
    std::vector<double> x(images.data<double>(), images.data<double>() + images.numel());
    int hw = 31;
    x = conv_act(net, "conv1", m.conv1, n, 3, hw, 1, x, hw);
    x = grouped_lrn(lrn, n, m.conv1.filters, hw, T, x);
    x = pool(n, m.conv1.filters, hw, hw, x);
    x = conv_act(net, "conv2", m.conv2, n, m.conv1.filters, hw, T, x, hw);
    x = grouped_lrn(lrn, n, m.conv2.filters, hw, T, x);
    x = pool(n, m.conv2.filters, hw, hw, x);
    x = conv_act(net, "conv3", m.conv3, n, m.conv2.filters, hw, 1, x, hw);
    x = conv_act(net, "conv4", m.conv4, n, m.conv3.filters, hw, T, x, hw);
    x = conv_act(net, "conv5", m.conv5, n, m.conv4.filters, hw, T, x, hw);
    x = pool(n, m.conv5.filters, hw, hw, x);
    x = fc(net, "fc6", n, x, true);
    x = fc(net, "fc7", n, x, true);
    x = fc(net, "fc8", n, x, false);

    const double* logits = net.logits().data<double>();
    for (size_t i = 0; i < x.size(); ++i)
      EXPECT_NEAR(logits[i], x[i], 1e-12 * (1 + std::abs(x[i])))
          << "towers " << towers << " logit " << i;
  }
}

TEST(Net, SlicesMapToTheDocumentedBlocksOfTheWholeTensor) {
  Config c = tiny_config(2, "relu");
  Net net(c, 1, DType::f64);
  // conv3.weight [8, 8, 3, 3]: tower t holds rows t*4.., and one slice per input tower r
  // covering input channels r*4...
  const int64_t count = 8 * 8 * 9;
  std::vector<double> w(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) w[static_cast<size_t>(i)] = static_cast<double>(i);
  net.scatter_whole("conv3.weight", false, w.data());
  for (const auto& p : net.params()) {
    if (p.name != "conv3.weight") continue;
    const int t = p.tower, r = static_cast<int>(p.col0 / (4 * 9));
    const double* v = p.value.data<double>();
    // slice element (o, ci, ky, kx) is whole element (t*4 + o, r*4 + ci, ky, kx)
    for (int o = 0; o < 4; ++o)
      for (int ci = 0; ci < 4; ++ci)
        for (int k = 0; k < 9; ++k)
          ASSERT_EQ(v[(o * 4 + ci) * 9 + k],
                    static_cast<double>(((t * 4 + o) * 8 + r * 4 + ci) * 9 + k));
  }
  const auto back = net.gather_whole("conv3.weight", false);
  EXPECT_EQ(std::memcmp(back.data(), w.data(), back.size()), 0);
}

TEST(Net, RefusesAnInputTooSmallNamingTheKey) {
  Config c = tiny_config(2, "relu");
  c.model.input_size = 15;
  try {
    Net net(c, 1);
    FAIL() << "expected an error";
  } catch (const std::exception& e) {
    EXPECT_NE(std::string(e.what()).find("model.input_size"), std::string::npos) << e.what();
  }
}

TEST(Net, PaperShapesAndParameterCount) {
  Config c;  // the paper's defaults
  Net net(c, 1);
  const auto table = net.layer_table();
  ASSERT_EQ(table.size(), 8u);
  EXPECT_EQ(table[0].output, "96x55x55");
  EXPECT_EQ(table[1].output, "256x27x27");
  EXPECT_EQ(table[2].output, "384x13x13");
  EXPECT_EQ(table[4].output, "256x13x13");
  EXPECT_EQ(table[5].output, "4096");
  int64_t params = 0;
  for (const auto& l : table) params += l.params;
  // 60,965,224: the well-known count of the two-tower AlexNet (groups 2 in conv2, 4, 5).
  EXPECT_EQ(params, 60965224);
  const auto tensors = net.whole_tensors();
  EXPECT_EQ(tensors[2].first, "conv2.weight");
  EXPECT_EQ(tensors[2].second, (std::vector<int64_t>{256, 48, 5, 5}));
  EXPECT_EQ(tensors[10].first, "fc6.weight");
  EXPECT_EQ(tensors[10].second, (std::vector<int64_t>{4096, 9216}));
}

// The bytes two towers on two GPUs send each other per step of 128, by hand from the paper's
// shapes: each tower receives the other's half (x 2 towers, x 4 bytes).
TEST(Net, PaperExchangeBytesPerStep) {
  Config c;
  Net net(c, 128);
  const auto table = net.exchange_table();
  ASSERT_EQ(table.size(), 6u);
  auto row = [&](const std::string& name) {
    for (const auto& e : table)
      if (e.name == name) return e;
    ADD_FAILURE() << "no exchange point " << name;
    return ExchangePoint{};
  };
  EXPECT_EQ(row("images").forward_bytes, int64_t{3} * 227 * 227 * 128 * 4);     // to tower 1
  EXPECT_EQ(row("conv3").forward_bytes, int64_t{2} * 128 * 13 * 13 * 128 * 4);  // pool2 halves
  EXPECT_EQ(row("conv3").backward_bytes, row("conv3").forward_bytes);
  EXPECT_EQ(row("fc6").forward_bytes, int64_t{2} * 128 * 6 * 6 * 128 * 4);  // pool5 halves
  EXPECT_EQ(row("fc7").forward_bytes, int64_t{2} * 2048 * 128 * 4);
  EXPECT_EQ(row("fc8").backward_bytes, int64_t{2} * 2048 * 128 * 4);
  EXPECT_EQ(row("logits").forward_bytes, int64_t{2} * 500 * 128 * 4);
  EXPECT_EQ(row("logits").backward_bytes, int64_t{1000} * 128 * 4);  // the loss gradient
}

}  // namespace
}  // namespace alexnet
