// Towers on two CPU devices (cpu:0, cpu:1: separate memory, and no op accepts tensors of both)
// against both towers on one CPU: every loss, gradient, weight and momentum bit-identical over
// several training steps with dropout, because the copying exchange adds the same numbers in
// the same order. And a checkpoint moves between the placements (tests/cpu/test_train.cpp runs
// that through the binary).
#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "alexnet/config.h"
#include "alexnet/data.h"
#include "alexnet/net.h"
#include "alexnet/sgd.h"
#include "run_binary.h"
#include "src/comm/exchange.h"

namespace alexnet {
namespace {

const Device kCpu0{}, kCpu1{Device::Kind::cpu, 1};

bool same_bits(const Tensor& a, const Tensor& b) {
  const Tensor ha = a.to(Device{}), hb = b.to(Device{});
  return ha.nbytes() == hb.nbytes() && std::memcmp(ha.raw(), hb.raw(), ha.nbytes()) == 0;
}

TEST(Placement, TwoCpuDevicesMatchOneBitForBit) {
  const Config config = load_config(test::source_path("configs/small.yaml"), {});
  const int B = config.data.batch_size;
  const auto data = make_source(config, Split::train);
  const DataStats stats = compute_stats(*data, 256, 1);
  Net one(config, B, DType::f32, {kCpu0, kCpu0}, make_exchange({kCpu0, kCpu0}));
  Net two(config, B, DType::f32, {kCpu0, kCpu1}, make_exchange({kCpu0, kCpu1}));
  one.init(config.seed);
  two.init(config.seed);

  // Tower t's parameters live on device t.
  for (const auto& p : two.params())
    EXPECT_EQ(p.value.device(), p.tower == 0 ? kCpu0 : kCpu1) << p.name << " tower " << p.tower;

  BatchLoader loader(*data, stats, config, B);
  Tensor images({B, 3, one.input_size(), one.input_size()});
  std::vector<int32_t> labels(static_cast<size_t>(B));
  const auto order = epoch_order(config.seed, 0, data->size());
  for (int step = 0; step < 4; ++step) {
    SCOPED_TRACE("step " + std::to_string(step));
    loader.decode(order.data() + step * B, B, labels.data());
    loader.augment_train(B, 0, images);
    const auto a = one.forward(images, labels.data(), B, true, config.seed, step);
    const auto b = two.forward(images, labels.data(), B, true, config.seed, step);
    EXPECT_EQ(a.loss_sum, b.loss_sum);
    EXPECT_EQ(a.top1, b.top1);
    EXPECT_TRUE(same_bits(one.logits(), two.logits()));
    one.backward();
    two.backward();
    for (size_t i = 0; i < one.params().size(); ++i)
      ASSERT_TRUE(same_bits(one.params()[i].grad, two.params()[i].grad))
          << one.params()[i].name << " tower " << one.params()[i].tower;
    sgd_step(one, config.optim, config.optim.lr);
    sgd_step(two, config.optim, config.optim.lr);
    for (size_t i = 0; i < one.params().size(); ++i) {
      ASSERT_TRUE(same_bits(one.params()[i].value, two.params()[i].value)) << one.params()[i].name;
      ASSERT_TRUE(same_bits(one.params()[i].momentum, two.params()[i].momentum))
          << one.params()[i].name;
    }
  }
  // Inference too (the softmax probabilities on tower 0's device).
  const auto a = one.forward(images, labels.data(), B, false, 0, 0);
  const auto b = two.forward(images, labels.data(), B, false, 0, 0);
  EXPECT_EQ(a.loss_sum, b.loss_sum);
  EXPECT_TRUE(same_bits(one.probs(), two.probs()));
  EXPECT_EQ(two.probs().device(), kCpu0);
}

// Whole tensors (checkpoints) do not depend on where the towers live.
TEST(Placement, WholeTensorsAreTheSameFromEitherPlacement) {
  const Config config = load_config(test::source_path("configs/small.yaml"), {});
  Net one(config, 4, DType::f32, {kCpu0, kCpu0}, make_exchange({kCpu0, kCpu0}));
  Net two(config, 4, DType::f32, {kCpu0, kCpu1}, make_exchange({kCpu0, kCpu1}));
  one.init(3);
  two.init(3);
  for (const auto& [name, shape] : one.whole_tensors())
    EXPECT_EQ(one.gather_whole(name, false), two.gather_whole(name, false)) << name;
  // And scattering a whole tensor lands on each tower's own device.
  const auto w = one.gather_whole("fc6.weight", false);
  two.scatter_whole("fc6.weight", false, w.data());
  for (const auto& p : two.params()) {
    if (p.name != "fc6.weight") continue;
    EXPECT_EQ(p.value.device(), p.tower == 0 ? kCpu0 : kCpu1);
  }
  EXPECT_EQ(two.gather_whole("fc6.weight", false), w);
}

}  // namespace
}  // namespace alexnet
