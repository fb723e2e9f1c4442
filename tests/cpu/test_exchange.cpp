// The exchange conformance cases, run against every exchange this machine has: the local one
// (both towers on one device), the copying one (towers on cpu:0 and cpu:1), and NCCL across two
// GPUs when two are usable (skipped, saying so, otherwise). Every implementation must give each
// tower the same values on its own device, and the sums in tower order.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "alexnet/train.h"
#include "src/comm/exchange.h"

namespace alexnet {
namespace {

const Device kCpu0{}, kCpu1{Device::Kind::cpu, 1};
const Device kGpu0{Device::Kind::cuda, 0}, kGpu1{Device::Kind::cuda, 1};

// A tensor on `device` whose element i is base + i / 8 (exact in float).
Tensor filled(Device device, int64_t n, float base) {
  Tensor host({n});
  for (int64_t i = 0; i < n; ++i) host.data<float>()[i] = base + static_cast<float>(i) / 8;
  return host.to(device);
}

std::vector<float> values(const Tensor& t, int64_t count) {
  const Tensor host = t.to(Device{});
  return {host.data<float>(), host.data<float>() + count};
}

struct Placement {
  const char* name;
  std::vector<Device> devices;
};

// Skips (returning false) when this machine cannot hold the placement.
bool available(const Placement& p) {
  for (const Device& d : p.devices)
    if (!d.is_cpu() && !cuda_unavailable_reason(d.index).empty()) return false;
  return true;
}

class ExchangeConformance : public ::testing::TestWithParam<Placement> {
 protected:
  void SetUp() override {
    if (!available(GetParam()))
      GTEST_SKIP() << GetParam().name << " skipped: needs two usable GPUs ("
                   << cuda_unavailable_reason(1) << ")";
    exchange_ = make_exchange(GetParam().devices);
  }
  const std::vector<Device>& devices() const { return GetParam().devices; }
  std::unique_ptr<Exchange> exchange_;
};

TEST_P(ExchangeConformance, AllGatherGivesEveryTowerEveryTensorOnItsOwnDevice) {
  const int64_t n = 50, count = 37;          // only the first `count` elements are exchanged
  for (int round = 0; round < 2; ++round) {  // the second round reuses the layer's buffers
    const auto shift = static_cast<float>(round);
    const std::vector<Tensor> own = {filled(devices()[0], n, 1.0f + shift),
                                     filled(devices()[1], n, -100.0f - shift)};
    const auto got = exchange_->all_gather("fc6", own, count);
    exchange_->wait("fc6");  // the results may be read only after it
    ASSERT_EQ(got.size(), 2u);
    for (size_t t = 0; t < 2; ++t) {
      ASSERT_EQ(got[t].size(), 2u);
      for (size_t r = 0; r < 2; ++r) {
        EXPECT_EQ(got[t][r].device(), devices()[t]) << "tower " << t << " sees tower " << r;
        EXPECT_EQ(values(got[t][r], count), values(own[r], count))
            << "round " << round << ", tower " << t << " sees tower " << r;
      }
    }
  }
}

TEST_P(ExchangeConformance, ReduceScatterSumsOnTheOwner) {
  const int64_t n = 40, count = 33;
  // partial[t][r] on tower t's device (with two towers a sum has two terms, so its order
  // cannot change the float result; the local and copying exchanges add in tower order anyway).
  std::vector<std::vector<Tensor>> partial(2);
  for (size_t t = 0; t < 2; ++t)
    for (size_t r = 0; r < 2; ++r)
      partial[t].push_back(filled(devices()[t], n, static_cast<float>(10 * t + r) + 0.5f));
  std::vector<Tensor> out = {filled(devices()[0], n, 7.0f), filled(devices()[1], n, 7.0f)};
  exchange_->reduce_scatter("conv3", partial, out, count);
  exchange_->wait("conv3");
  for (size_t r = 0; r < 2; ++r) {
    EXPECT_EQ(out[r].device(), devices()[r]);
    const auto a = values(partial[0][r], n), b = values(partial[1][r], n), got = values(out[r], n);
    for (int64_t i = 0; i < n; ++i) {
      const float want = i < count ? a[static_cast<size_t>(i)] + b[static_cast<size_t>(i)]
                                   : 7.0f + static_cast<float>(i) / 8;
      EXPECT_EQ(got[static_cast<size_t>(i)], want) << "owner " << r << " element " << i;
    }
  }
}

TEST_P(ExchangeConformance, BroadcastGivesEveryTowerTowerZerosTensor) {
  const Tensor source = filled(devices()[0], 30, 3.0f);
  const auto got = exchange_->broadcast("images", source, 30);
  exchange_->wait("images");
  ASSERT_EQ(got.size(), 2u);
  for (size_t t = 0; t < 2; ++t) {
    EXPECT_EQ(got[t].device(), devices()[t]);
    EXPECT_EQ(values(got[t], 30), values(source, 30)) << "tower " << t;
  }
}

INSTANTIATE_TEST_SUITE_P(
    EveryExchange, ExchangeConformance,
    ::testing::Values(Placement{"local (both towers on the CPU)", {kCpu0, kCpu0}},
                      Placement{"copying (cpu:0, cpu:1)", {kCpu0, kCpu1}},
                      Placement{"NCCL (cuda:0, cuda:1)", {kGpu0, kGpu1}}),
    [](const ::testing::TestParamInfo<Placement>& param) {
      return std::string(param.index == 0 ? "Local" : param.index == 1 ? "CopyingCpu" : "Nccl");
    });

// Towers on one device share storage: the local exchange hands out the tensors themselves.
TEST(Exchange, LocalGatherAndBroadcastCopyNothing) {
  const auto local = make_exchange({kCpu0, kCpu0});
  const std::vector<Tensor> own = {filled(kCpu0, 4, 0), filled(kCpu0, 4, 1)};
  const auto got = local->all_gather("fc7", own, 4);
  EXPECT_EQ(got[1][0].raw(), own[0].raw());
  EXPECT_EQ(local->broadcast("images", own[0], 4)[1].raw(), own[0].raw());
}

TEST(Exchange, ACpuTowerAndAGpuTowerAreRefused) {
  std::string message;
  try {
    make_exchange({kCpu0, kGpu0});
  } catch (const std::exception& e) {
    message = e.what();
  }
  EXPECT_NE(message.find("towers on [cpu, cuda:0]"), std::string::npos) << message;
}

}  // namespace
}  // namespace alexnet
