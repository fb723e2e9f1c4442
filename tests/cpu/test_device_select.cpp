// Which device a run takes: --device auto is the first GPU when one is usable and the CPU
// otherwise; --device cuda without a usable GPU is refused with one line that names the value;
// model.devices is used when --device is auto, and must name one device for both towers. With
// many ranks on a host, each takes GPUs of its own (hand-worked cases of the rule).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

#include "alexnet/config.h"
#include "alexnet/train.h"
#include "run_binary.h"

namespace alexnet {
namespace {

using test::error_of;

bool have_gpu() {
  return cuda_unavailable_reason(0).empty();
}

Config with_devices(std::vector<std::string> devices) {
  Config c;
  c.model.devices = std::move(devices);
  return c;
}

TEST(DeviceSelect, ResolvesTheSpellings) {
  const Device cpu{};
  EXPECT_EQ(resolve_device("cpu", "--device"), cpu);
  EXPECT_EQ(resolve_device("cpu:3", "--device"), cpu);  // one CPU; the index only names it
  const Device gpu0{Device::Kind::cuda, 0};
  EXPECT_EQ(resolve_device("auto", "--device"), have_gpu() ? gpu0 : cpu);
  const auto bad = error_of([] { resolve_device("gpu7", "--device"); });
  EXPECT_NE(bad.find("--device = 'gpu7'"), std::string::npos) << bad;
  EXPECT_NE(bad.find("expected cpu, cpu:N, cuda or cuda:N"), std::string::npos) << bad;
  // No machine here has 1000 GPUs.
  const auto far = error_of([] { resolve_device("cuda:999", "--device"); });
  EXPECT_NE(far.find("--device = 'cuda:999': no usable CUDA device: "), std::string::npos) << far;
}

TEST(DeviceSelect, CudaWithoutAGpuIsRefused) {
  if (have_gpu()) GTEST_SKIP() << "a GPU is usable here";
  for (const char* spelling : {"cuda", "cuda:0", "cuda:1"}) {
    const auto e = error_of([&] { resolve_device(spelling, "--device"); });
    EXPECT_EQ(e.rfind(std::string("--device = '") + spelling + "': no usable CUDA device: ", 0), 0u)
        << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << e;
  }
  EXPECT_NE(error_of([] { check_device("cuda", "--device"); }).find("no usable CUDA device"),
            std::string::npos);
}

TEST(DeviceSelect, EachRankOfAHostTakesGpusOfItsOwn) {
  const Device g0{Device::Kind::cuda, 0}, g1{Device::Kind::cuda, 1};
  auto gpus = [](std::vector<Device> v) {
    std::vector<int> out;
    for (const Device& d : v) out.push_back(d.is_cpu() ? -1 : d.index);
    return out;
  };
  using V = std::vector<int>;
  // [auto] on 8 GPUs: 4 ranks take two each, 8 ranks one each (both towers there).
  EXPECT_EQ(gpus(place_on_host_share({g0, g1}, true, {3, 4, 8, "n"})), (V{6, 7}));
  EXPECT_EQ(gpus(place_on_host_share({g0, g1}, true, {5, 8, 8, "n"})), (V{5, 5}));
  // A placement named by hand is counted from the rank's share: cuda:0 for both towers.
  EXPECT_EQ(gpus(place_on_host_share({g0, g0}, false, {1, 2, 2, "n"})), (V{1, 1}));
  EXPECT_EQ(gpus(place_on_host_share({g0, g1}, false, {1, 2, 4, "n"})), (V{2, 3}));
  // One rank on the host (also what a rank is when the launcher gave the ranks of its host
  // separate GPUs), or CPU ranks: as they are.
  EXPECT_EQ(gpus(place_on_host_share({g0, g1}, true, {0, 1, 8, "n"})), (V{0, 1}));
  EXPECT_EQ(gpus(place_on_host_share({Device{}, Device{}}, false, {1, 4, 0, "n"})), (V{-1, -1}));
  // More ranks than GPUs: one line naming the host and the numbers.
  EXPECT_EQ(error_of([&] {
              place_on_host_share({g0, g0}, true, {3, 4, 2, "node17"});
            }),
            "more ranks than GPUs on node17: 4 ranks there with 1 GPU each need 4 GPUs, and it "
            "has 2 (start fewer ranks per node, or put both towers on one GPU: --device cuda:0)");
  EXPECT_NE(error_of([&] { place_on_host_share({g0, g1}, false, {1, 2, 3, "n"}); }), "(no error)");
}

TEST(DeviceSelect, ModelDevicesWhenTheOptionIsAuto) {
  const Device cpu{}, cpu1{Device::Kind::cpu, 1};
  using Placement = std::vector<Device>;
  EXPECT_EQ(select_placement("auto", with_devices({"cpu"})), (Placement{cpu, cpu}));
  // Two CPU devices: separate memories, kept apart.
  EXPECT_EQ(select_placement("auto", with_devices({"cpu:0", "cpu:1"})), (Placement{cpu, cpu1}));
  // The command line wins, for every tower.
  EXPECT_EQ(select_placement("cpu", with_devices({"cuda:999"})), (Placement{cpu, cpu}));
  EXPECT_EQ(select_placement("auto", with_devices({"auto"})).size(), 2u);
  const auto missing = error_of([] { select_placement("auto", with_devices({"cuda:999"})); });
  EXPECT_NE(missing.find("model.devices = 'cuda:999': no usable CUDA device"), std::string::npos)
      << missing;
  const auto three = error_of([] {
    select_placement("auto", with_devices({"cpu", "cpu", "cpu"}));
  });
  EXPECT_NE(three.find("model.devices = [cpu, cpu, cpu]: 3 devices for 2 towers"),
            std::string::npos)
      << three;
  const auto bad = error_of([] { select_placement("auto", with_devices({"cpu", "gpu1"})); });
  EXPECT_NE(bad.find("model.devices = 'gpu1'"), std::string::npos) << bad;
  if (have_gpu()) {
    const Device gpu0{Device::Kind::cuda, 0};
    EXPECT_EQ(select_placement("auto", with_devices({"cuda:0", "cuda:0"})),
              (Placement{gpu0, gpu0}));
    const bool two = cuda_unavailable_reason(1).empty();
    EXPECT_EQ(select_placement("auto", with_devices({"auto"})),
              (Placement{gpu0, two ? Device{Device::Kind::cuda, 1} : gpu0}));
  }
}

// The binary, as a user runs it on a machine without a GPU.
class DeviceCli : public test::TempDirTest {
 protected:
  std::vector<std::string> train(const std::string& device) const {
    return {"alexnet-train",
            "--config",
            test::source_path("configs/small.yaml"),
            "--out",
            (dir_ / "run").string(),
            "--device",
            device,
            "--set",
            "train.max_steps=2",
            "--set",
            "data.synthetic.train_images=64",
            "--set",
            "data.synthetic.val_images=32"};
  }
};

TEST_F(DeviceCli, TrainWithDeviceCudaExits2WithOneLine) {
  if (have_gpu()) GTEST_SKIP() << "a GPU is usable here";
  for (const char* device : {"cuda", "cuda:0"}) {
    const auto r = test::run(train(device), dir_.string());
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find(std::string("--device = '") + device + "'"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("no usable CUDA device"), std::string::npos) << r.err;
    EXPECT_FALSE(std::filesystem::exists(dir_ / "run")) << "refused after touching the run dir";
  }
}

TEST_F(DeviceCli, EvalAndPredictRefuseCudaToo) {
  if (have_gpu()) GTEST_SKIP() << "a GPU is usable here";
  const auto t = test::run(train("cpu"), dir_.string());
  ASSERT_EQ(t.exit_code, 0) << t.err;
  const auto ckpt = (dir_ / "run/checkpoints/last.safetensors").string();
  for (const std::vector<std::string>& args :
       {std::vector<std::string>{"alexnet-eval", "--checkpoint", ckpt, "--device", "cuda"},
        std::vector<std::string>{"alexnet-predict", "--checkpoint", ckpt, "--device", "cuda",
                                 "x.png"}}) {
    const auto r = test::run(args, dir_.string());
    EXPECT_EQ(r.exit_code, 2) << args[0] << ": " << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_NE(r.err.find("--device = 'cuda': no usable CUDA device"), std::string::npos) << r.err;
  }
}

TEST_F(DeviceCli, AutoTrainsOnWhatIsThere) {
  const auto r = test::run(train("auto"), dir_.string());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string expected = have_gpu() ? "device: cuda:0" : "device: cpu";
  EXPECT_NE(r.out.find(expected), std::string::npos) << r.out;
  EXPECT_TRUE(std::filesystem::exists(dir_ / "run/checkpoints/last.safetensors"));
}

}  // namespace
}  // namespace alexnet
