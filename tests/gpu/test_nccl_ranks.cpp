// The gradient sum over ranks' GPUs (src/comm/nccl_gradient_sum.h), with ranks played by threads
// of this process (NCCL's communicators do not care which process a rank lives in): every layer's
// gradients handed over during backward come out of finish() as the sum over the ranks. The
// oracle is each rank's gradients from the same net without the sum, added on the host (a sum
// of two floats is the same in either order, so the match is exact). Skipped without GPUs: the
// two-rank case needs two.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "../cpu/run_binary.h"
#include "../cpu/test_util.h"
#include "alexnet/config.h"
#include "alexnet/net.h"
#include "alexnet/train.h"
#include "gpu_test_util.h"
#include "src/comm/exchange.h"
#include "src/comm/nccl_gradient_sum.h"

namespace alexnet {
namespace {

Config small_config() {
  return load_config(test::source_path("configs/small.yaml"), {"model.dropout=0"});
}

constexpr int kBatch = 8;

// Every Param::grad of `net`, copied to the host, in params() order.
std::vector<std::vector<float>> gradients(const Net& net) {
  std::vector<std::vector<float>> out;
  for (const auto& p : net.params()) {
    const Tensor host = p.grad.to(Device{});
    out.emplace_back(host.data<float>(), host.data<float>() + host.numel());
  }
  return out;
}

// One training step of a net on `gpu` (both towers there) on batch `seed`; `make`, when given,
// makes the gradient sum that backward hands every layer to.
std::vector<std::vector<float>> step_gradients(
    int gpu, uint32_t seed, const std::function<std::unique_ptr<GradientSum>(Net&)>& make = {}) {
  const Config config = small_config();
  const Device device{Device::Kind::cuda, gpu};
  const std::vector<Device> placement = {device, device};
  configure_devices(placement, config);  // cuda.deterministic: the same gradients every time
  Net net(config, kBatch, DType::f32, placement, make_exchange(placement));
  net.init(config.seed);
  const std::unique_ptr<GradientSum> sum = make ? make(net) : nullptr;
  if (sum) net.on_weight_gradients = [&](const std::string& layer) { sum->layer_ready(layer); };
  const int s = net.input_size();
  Tensor images({kBatch, 3, s, s});
  const auto v = test::random_vector<float>(static_cast<size_t>(images.numel()), seed);
  std::memcpy(images.data<float>(), v.data(), v.size() * sizeof(float));
  std::vector<int32_t> labels(kBatch);
  for (int i = 0; i < kBatch; ++i)
    labels[static_cast<size_t>(i)] = static_cast<int32_t>((seed + i) % 10);
  net.forward(images, labels.data(), kBatch, true, config.seed, 0);
  net.backward();
  if (sum) sum->finish();
  return gradients(net);
}

TEST(NcclGradientSum, OneRankLeavesEveryGradientAsItWas) {
  AX_REQUIRE_GPU();
  const auto plain = step_gradients(0, 1);
  const std::string ids = gpu::nccl_unique_ids(1);
  const auto summed = step_gradients(0, 1, [&](Net& net) {
    return gpu::make_nccl_gradient_sum(net, 1, 0, ids, 60, "the test's rank 0");
  });
  ASSERT_EQ(plain.size(), summed.size());
  for (size_t i = 0; i < plain.size(); ++i) EXPECT_EQ(plain[i], summed[i]) << "param " << i;
}

TEST(NcclGradientSum, TwoRanksOnTwoGpusHoldTheSumOfTheirGradients) {
  AX_REQUIRE_GPU();
  if (const std::string why = cuda_unavailable_reason(1); !why.empty())
    GTEST_SKIP() << "GPU test skipped: two ranks need two GPUs: " << why;
  // Each rank's own gradients, on its GPU, from its own batch.
  const std::vector<std::vector<std::vector<float>>> own = {step_gradients(0, 1),
                                                            step_gradients(1, 2)};
  const std::string ids = gpu::nccl_unique_ids(1);
  std::vector<std::vector<std::vector<float>>> summed(2);
  std::vector<std::thread> ranks;
  for (int r = 0; r < 2; ++r)
    ranks.emplace_back([&, r] {
      summed[static_cast<size_t>(r)] =
          step_gradients(r, static_cast<uint32_t>(r + 1), [&](Net& net) {
            return gpu::make_nccl_gradient_sum(net, 2, r, ids, 60, "the test's rank");
          });
    });
  for (auto& t : ranks) t.join();
  for (size_t i = 0; i < own[0].size(); ++i) {
    std::vector<float> want(own[0][i].size());
    for (size_t k = 0; k < want.size(); ++k) want[k] = own[0][i][k] + own[1][i][k];
    EXPECT_EQ(summed[0][i], want) << "param " << i << " on rank 0";
    EXPECT_EQ(summed[1][i], want) << "param " << i << " on rank 1";
  }
}

}  // namespace
}  // namespace alexnet
