// The whole two-tower net trained on one GPU against the same net on the CPU: 20 steps of the
// small config from the same initial weights (dropout off, so no mask enters), every parameter
// and every step's loss within 1e-4 relative; a checkpoint written from the GPU run evaluates on
// the CPU to the same result; and the binaries take --device cuda end to end.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>

#include "../cpu/run_binary.h"
#include "alexnet/checkpoint.h"
#include "alexnet/config.h"
#include "alexnet/data.h"
#include "alexnet/net.h"
#include "alexnet/sgd.h"
#include "alexnet/train.h"
#include "gpu_test_util.h"
#include "src/comm/exchange.h"

namespace alexnet {
namespace {

constexpr Device kGpu{Device::Kind::cuda, 0};
constexpr double kTolerance = 1e-4;
constexpr int kSteps = 20;

Config small_config() {
  return load_config(test::source_path("configs/small.yaml"), {"model.dropout=0"});
}

// max over elements of |a - b| / (1 + |ref|)
double max_rel(const std::vector<std::byte>& ref, const std::vector<std::byte>& got) {
  EXPECT_EQ(ref.size(), got.size());
  const size_t n = std::min(ref.size(), got.size()) / sizeof(float);
  std::vector<float> a(n), b(n);
  std::memcpy(a.data(), ref.data(), n * sizeof(float));
  std::memcpy(b.data(), got.data(), n * sizeof(float));
  double worst = 0;
  for (size_t i = 0; i < n; ++i) {
    const double e = std::abs(double{a[i]} - double{b[i]}) / (1.0 + std::abs(double{a[i]}));
    worst = std::isnan(e) ? INFINITY : std::max(worst, e);
  }
  return worst;
}

// Both nets, trained side by side on the same batches.
struct SideBySide {
  Config config = small_config();
  std::unique_ptr<DataSource> train = make_source(config, Split::train, nullptr);
  DataStats stats = compute_stats(*train, 512, 1);
  int B = config.data.batch_size;
  Net cpu{config, B};
  Net gpu;
  std::vector<double> cpu_loss, gpu_loss;

  // The GPU net's towers on `placement` (default: both on cuda:0).
  explicit SideBySide(std::vector<Device> placement = {kGpu, kGpu})
      : gpu(config, B, DType::f32, placement, make_exchange(placement)) {
    cpu.init(config.seed);
    gpu.init(config.seed);
  }

  void run(int steps) {
    BatchLoader loader(*train, stats, config, B);
    const auto order = epoch_order(config.seed, 0, train->size());
    Tensor images({B, 3, cpu.input_size(), cpu.input_size()});
    std::vector<int32_t> labels(static_cast<size_t>(B));
    for (int step = 0; step < steps; ++step) {
      loader.decode(order.data() + static_cast<ptrdiff_t>(step) * B, B, labels.data());
      loader.augment_train(B, 0, images);
      for (Net* net : {&cpu, &gpu}) {
        const auto r =
            net->forward(images, labels.data(), B, true, config.seed, static_cast<uint64_t>(step));
        net->backward();
        sgd_step(*net, config.optim, config.optim.lr);
        (net == &cpu ? cpu_loss : gpu_loss).push_back(r.loss_sum / B);
      }
    }
  }
};

void twenty_steps_agree(SideBySide& s) {
  // The same initial weights on both (gather_whole copies the GPU's back to the host).
  for (const auto& [name, shape] : s.cpu.whole_tensors())
    ASSERT_EQ(s.cpu.gather_whole(name, false), s.gpu.gather_whole(name, false)) << name;

  s.run(kSteps);
  for (int i = 0; i < kSteps; ++i) {
    const double ref = s.cpu_loss[static_cast<size_t>(i)], got = s.gpu_loss[static_cast<size_t>(i)];
    EXPECT_LE(std::abs(ref - got) / (1 + std::abs(ref)), kTolerance)
        << "step " << i << ": cpu " << ref << " gpu " << got;
  }
  std::printf("loss: step 1 %.6f -> step %d cpu %.6f gpu %.6f\n", s.cpu_loss.front(), kSteps,
              s.cpu_loss.back(), s.gpu_loss.back());
  EXPECT_LT(s.cpu_loss.back(), s.cpu_loss.front()) << "20 steps should lower the loss";
  for (const auto& [name, shape] : s.cpu.whole_tensors())
    for (bool momentum : {false, true}) {
      const double e =
          max_rel(s.cpu.gather_whole(name, momentum), s.gpu.gather_whole(name, momentum));
      std::printf("  %-9s%-13s max rel diff %.2e\n", momentum ? "momentum." : "", name.c_str(), e);
      EXPECT_LE(e, kTolerance) << (momentum ? "momentum." : "") << name;
    }
}

TEST(TrainGpu, TwentyStepsAgreeWithTheCpu) {
  AX_REQUIRE_GPU();
  SideBySide s;  // both towers on cuda:0, each on its own stream
  ASSERT_TRUE(s.gpu.params().front().value.device() == kGpu);
  twenty_steps_agree(s);
}

// The paper's placement: tower t on GPU t, talking through NCCL.
TEST(TrainGpu, TwoGpusThroughNcclAgreeWithTheCpu) {
  AX_REQUIRE_GPU();
  if (const std::string why = cuda_unavailable_reason(1); !why.empty())
    GTEST_SKIP() << "GPU test skipped: needs two usable GPUs for the NCCL exchange: " << why;
  const Device gpu1{Device::Kind::cuda, 1};
  SideBySide s({kGpu, gpu1});
  for (const auto& p : s.gpu.params()) ASSERT_EQ(p.value.device(), p.tower == 0 ? kGpu : gpu1);
  twenty_steps_agree(s);
}

TEST(TrainGpu, CheckpointFromTheGpuEvaluatesTheSameOnTheCpu) {
  AX_REQUIRE_GPU();
  SideBySide s;
  s.run(5);
  const auto dir = test::temp_dir("gpu-ckpt");
  const std::string path = dir + "/gpu.safetensors";
  TrainState state;
  state.step = 5;
  save_checkpoint(path, s.gpu, s.config, state, s.stats, s.train->classes(),
                  s.train->class_names());

  const Checkpoint ckpt = read_checkpoint(path, {});
  Net on_cpu(ckpt.config, s.B);
  load_weights(ckpt, on_cpu, true);
  for (const auto& [name, shape] : on_cpu.whole_tensors()) {
    EXPECT_EQ(on_cpu.gather_whole(name, false), s.gpu.gather_whole(name, false)) << name;
    EXPECT_EQ(on_cpu.gather_whole(name, true), s.gpu.gather_whole(name, true)) << name;
  }
  // And back onto a GPU: load_weights uploads.
  Net back_on_gpu(ckpt.config, s.B, DType::f32, kGpu);
  load_weights(ckpt, back_on_gpu, true);
  for (const auto& [name, shape] : on_cpu.whole_tensors())
    EXPECT_EQ(back_on_gpu.gather_whole(name, false), s.gpu.gather_whole(name, false)) << name;

  const auto val = make_source(ckpt.config, Split::val, &ckpt.classes);
  const auto on_gpu_result = evaluate(s.gpu, *val, ckpt.stats, ckpt.config, 1);
  const auto on_cpu_result = evaluate(on_cpu, *val, ckpt.stats, ckpt.config, 1);
  std::printf("eval: cpu loss %.6f top1 %.4f, gpu loss %.6f top1 %.4f\n", on_cpu_result.loss,
              on_cpu_result.top1_error, on_gpu_result.loss, on_gpu_result.top1_error);
  EXPECT_EQ(on_cpu_result.images, on_gpu_result.images);
  EXPECT_LE(std::abs(on_cpu_result.loss - on_gpu_result.loss) / (1 + on_cpu_result.loss),
            kTolerance);
  // A sample whose top classes tie within rounding could flip; allow one image of slack.
  const double one = 1.0 / static_cast<double>(on_cpu_result.images);
  EXPECT_LE(std::abs(on_cpu_result.top1_error - on_gpu_result.top1_error), one + 1e-12);
  EXPECT_LE(std::abs(on_cpu_result.top5_error - on_gpu_result.top5_error), one + 1e-12);
  std::filesystem::remove_all(dir);
}

// The binaries: train on cuda, evaluate the checkpoint with --device cpu and --device cuda.
TEST(TrainGpu, BinariesTakeDeviceCuda) {
  AX_REQUIRE_GPU();
  const auto dir = test::temp_dir("gpu-bin");
  const auto t =
      test::run({"alexnet-train", "--config", test::source_path("configs/small.yaml"), "--out",
                 dir + "/run", "--device", "cuda", "--set", "train.max_steps=10", "--set",
                 "data.synthetic.train_images=320", "--set", "data.synthetic.val_images=64"},
                dir);
  ASSERT_EQ(t.exit_code, 0) << t.err;
  EXPECT_NE(t.out.find("device: cuda:0"), std::string::npos) << t.out;
  std::string json[2];
  int i = 0;
  for (const char* device : {"cpu", "cuda:0"}) {
    const auto e =
        test::run({"alexnet-eval", "--checkpoint", dir + "/run/checkpoints/last.safetensors",
                   "--json", "--device", device},
                  dir);
    ASSERT_EQ(e.exit_code, 0) << device << ": " << e.err;
    json[i++] = e.out;
  }
  auto field = [](const std::string& s, const std::string& key) {
    const auto at = s.find("\"" + key + "\": ");
    EXPECT_NE(at, std::string::npos) << s;
    return at == std::string::npos ? NAN : std::stod(s.substr(at + key.size() + 4));
  };
  EXPECT_NEAR(field(json[0], "loss"), field(json[1], "loss"), 1e-4 * (1 + field(json[0], "loss")));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace alexnet
