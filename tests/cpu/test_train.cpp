// Training end to end through alexnet-train and alexnet-eval, as a user runs them: the small
// synthetic config learns, and a stopped run resumes to the same weights bit for bit.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <sstream>
#include <thread>

#include "alexnet/safetensors.h"
#include "run_binary.h"

namespace alexnet {
namespace {

using test::run;

std::vector<std::string> small(const std::string& out, std::vector<std::string> sets) {
  std::vector<std::string> args = {"alexnet-train", "--config",
                                   test::source_path("configs/small.yaml"), "--out", out};
  for (auto& s : sets) {
    args.push_back("--set");
    args.push_back(s);
  }
  return args;
}

// The fields of a metrics.csv row.
std::vector<std::string> fields_of(const std::string& row) {
  std::vector<std::string> fields;
  std::istringstream in(row);
  for (std::string f; std::getline(in, f, ',');) fields.push_back(f);
  return fields;
}

// metrics.csv rows without the images_per_s and data_wait columns, which depend on the machine's
// load.
std::vector<std::string> metrics_without_speed(const std::string& path) {
  std::istringstream in(test::read_file(path));
  std::vector<std::string> rows;
  for (std::string row; std::getline(in, row);) {
    const auto fields = fields_of(row);
    EXPECT_EQ(fields.size(), 10u) << row;
    std::string kept;
    for (size_t i = 0; i < 8 && i < fields.size(); ++i) kept += (i ? "," : "") + fields[i];
    rows.push_back(kept);
  }
  return rows;
}

TEST(Train, SmallSyntheticConfigLearnsFarBelowChance) {
  const auto dir = test::temp_dir("learn");
  // 2 epochs of 100 steps; chance is 90% top-1 error with 10 classes.
  const auto r = run(small(dir + "/run", {"train.epochs=2"}), dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto rows = metrics_without_speed(dir + "/run/metrics.csv");
  ASSERT_EQ(rows.size(), 3u) << test::read_file(dir + "/run/metrics.csv");

  // The data-wait share: a metrics.csv column, in every periodic line of train.log and in the
  // epoch summaries (what it is depends on the machine; that it is a share does not).
  const std::string metrics = test::read_file(dir + "/run/metrics.csv");
  EXPECT_EQ(fields_of(metrics.substr(0, metrics.find('\n'))).back(), "data_wait");
  std::istringstream metric_rows(metrics.substr(metrics.find('\n') + 1));
  for (std::string row; std::getline(metric_rows, row);) {
    const double share = std::stod(fields_of(row).back());
    EXPECT_GE(share, 0.0) << row;
    EXPECT_LE(share, 1.0) << row;
  }
  const std::string log = test::read_file(dir + "/run/train.log");
  int periodic = 0, summaries = 0;
  std::istringstream log_lines(log);
  for (std::string line; std::getline(log_lines, line);) {
    if (line.find(" img/s ") != std::string::npos && line.find("step ") != std::string::npos) {
      ++periodic;
      EXPECT_NE(line.find(" data_wait 0."), std::string::npos) << line;
    }
    if (line.find(" done: loss ") != std::string::npos) {
      ++summaries;
      const auto at = line.find("  data wait ");
      ASSERT_NE(at, std::string::npos) << line;
      EXPECT_NE(line.find('%', at), std::string::npos) << line;
      // The resident memory, in MB: more than the net's weights, less than the machine.
      const auto rss = line.find("  rss ");
      ASSERT_NE(rss, std::string::npos) << line;
      const double mb = std::stod(line.substr(rss + 6));
      EXPECT_GT(mb, 1.0) << line;
      EXPECT_LT(mb, 1e6) << line;
      EXPECT_NE(line.find(" MB", rss), std::string::npos) << line;
    }
  }
  EXPECT_EQ(periodic, 10) << log;  // 200 steps, a line every 20
  EXPECT_EQ(summaries, 2) << log;

  const auto e = run(
      {"alexnet-eval", "--checkpoint", dir + "/run/checkpoints/last.safetensors", "--json"}, dir);
  ASSERT_EQ(e.exit_code, 0) << e.err;
  const auto at = e.out.find("\"top1_error\": ");
  ASSERT_NE(at, std::string::npos) << e.out;
  const double top1 = std::stod(e.out.substr(at + 14));
  std::printf("validation top-1 error after 200 steps: %.4f (chance 0.9)\n", top1);
  EXPECT_LT(top1, 0.25);
  // alexnet-eval agrees with the trainer's own validation of the same weights.
  EXPECT_NE(rows.back().find(std::to_string(top1).substr(0, 6)), std::string::npos)
      << rows.back() << " vs " << e.out;
}

// 2K steps straight, versus K steps, stop, resume, K more. K = 30 stops mid-epoch 2 (20 steps
// per epoch), so the data position, the LR schedule and the epoch's running metrics must all
// come back from the checkpoint.
constexpr int kSteps = 30;
const std::vector<std::string> kResumeSets = {"data.synthetic.train_images=640",
                                              "data.synthetic.val_images=64",
                                              "train.log_every=1",
                                              "optim.schedule=plateau",
                                              "optim.patience=0",
                                              "optim.min_delta=0.5"};  // LR drops each epoch

std::vector<std::string> with_steps(int steps) {
  auto s = kResumeSets;
  s.push_back("train.max_steps=" + std::to_string(steps));
  return s;
}

void expect_same_checkpoint(const std::string& a, const std::string& b) {
  const auto fa = read_safetensors(a), fb = read_safetensors(b);
  ASSERT_EQ(fa.tensors.size(), fb.tensors.size());
  int momentum = 0;
  for (const auto& [name, t] : fa.tensors) {
    const auto* u = fb.find(name);
    ASSERT_NE(u, nullptr) << name;
    EXPECT_EQ(t.shape, u->shape) << name;
    EXPECT_TRUE(t.data == u->data) << name << " differs";
    momentum += name.rfind("momentum.", 0) == 0;
  }
  EXPECT_EQ(momentum, 16);
  // (epoch_progress holds seconds, which differ between runs)
  for (const char* key : {"step", "epoch", "batch_in_epoch", "lr", "schedule", "best_val_top1"})
    EXPECT_EQ(fa.metadata.at(key), fb.metadata.at(key)) << key;
}

// The towers on two CPU devices (separate memory, talking through the copying exchange) give
// the same bits as both on one; and a checkpoint moves between the placements in either
// direction: K steps on one placement, resumed for K more on the other, ends where 2K steps
// straight end.
TEST(Train, ResumeMovesBetweenPlacements) {
  const auto dir = test::temp_dir("placement");
  auto sets = [](int steps, const char* devices) {
    auto s = with_steps(steps);
    s.push_back(std::string("model.devices=") + devices);
    return s;
  };
  // --device auto, so that model.devices decides (the test runner passes --device cpu otherwise).
  auto train_args = [](const std::string& out, std::vector<std::string> s) {
    auto args = small(out, std::move(s));
    args.insert(args.end(), {"--device", "auto"});
    return args;
  };
  const char* one = "[cpu]";
  const char* two = "[cpu:0,cpu:1]";
  const auto on_two = run(train_args(dir + "/straight-two", sets(2 * kSteps, two)), dir);
  ASSERT_EQ(on_two.exit_code, 0) << on_two.err;
  EXPECT_NE(on_two.out.find("devices: tower 0 on cpu, tower 1 on cpu:1"), std::string::npos)
      << on_two.out;
  const auto on_one = run(train_args(dir + "/straight-one", sets(2 * kSteps, one)), dir);
  ASSERT_EQ(on_one.exit_code, 0) << on_one.err;
  expect_same_checkpoint(dir + "/straight-one/checkpoints/last.safetensors",
                         dir + "/straight-two/checkpoints/last.safetensors");
  for (const auto& [first, then] : {std::pair{two, one}, std::pair{one, two}}) {
    const std::string out = dir + "/split-" + std::string(first == one ? "one" : "two");
    ASSERT_EQ(run(train_args(out, sets(kSteps, first)), dir).exit_code, 0);
    auto args = train_args(out, sets(2 * kSteps, then));
    args.push_back("--resume");
    args.push_back("auto");
    const auto r = run(args, dir);
    ASSERT_EQ(r.exit_code, 0) << r.err;
    SCOPED_TRACE(std::string("first ") + first + ", then " + then);
    expect_same_checkpoint(dir + "/straight-one/checkpoints/last.safetensors",
                           out + "/checkpoints/last.safetensors");
  }
}

// 2K steps straight against K steps, a stop and K more resumed (`sets(steps)`: the --set values
// of a run of `steps` steps): the same weights, momenta, state and metrics.
void expect_resume_is_bit_identical(const std::string& dir,
                                    const std::function<std::vector<std::string>(int)>& sets) {
  const auto straight = run(small(dir + "/straight", sets(2 * kSteps)), dir);
  ASSERT_EQ(straight.exit_code, 0) << straight.err;
  const auto first = run(small(dir + "/split", sets(kSteps)), dir);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  auto args = small(dir + "/split", sets(2 * kSteps));
  args.insert(args.end(), {"--resume", "auto"});
  const auto second = run(args, dir);
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_NE(second.out.find("resuming"), std::string::npos) << second.out;

  expect_same_checkpoint(dir + "/straight/checkpoints/last.safetensors",
                         dir + "/split/checkpoints/last.safetensors");
  EXPECT_EQ(metrics_without_speed(dir + "/straight/metrics.csv"),
            metrics_without_speed(dir + "/split/metrics.csv"));
}

TEST(Train, ResumeAfterMaxStepsIsBitIdentical) {
  expect_resume_is_bit_identical(test::temp_dir("resume"), with_steps);
}

TEST(Train, ResumeAfterSigtermIsBitIdentical) {
  const auto dir = test::temp_dir("sigterm");
  auto straight = run(small(dir + "/straight", with_steps(2 * kSteps)), dir);
  ASSERT_EQ(straight.exit_code, 0) << straight.err;

  const pid_t pid =
      test::start(small(dir + "/split", with_steps(2 * kSteps)), dir, dir + "/out1", dir + "/err1");
  const auto log = dir + "/split/train.log";
  for (int i = 0; i < 3000; ++i) {  // until a few steps are done (at most 30 s)
    if (test::read_file(log).find("step 3/") != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid, SIGTERM);
  const int code = test::wait_exit_code(pid);
  ASSERT_EQ(code, 128 + SIGTERM) << test::read_file(dir + "/err1");
  const auto stopped = read_safetensors(dir + "/split/checkpoints/last.safetensors");
  const int at = std::stoi(stopped.metadata.at("step"));
  std::printf("SIGTERM stopped the run after step %d of %d\n", at, 2 * kSteps);
  ASSERT_LT(at, 2 * kSteps) << "the run finished before the signal; nothing was tested";
  EXPECT_NE(test::read_file(dir + "/out1").find("stopped by SIGTERM"), std::string::npos);

  auto args = small(dir + "/split", with_steps(2 * kSteps));
  args.push_back("--resume");
  args.push_back("auto");
  auto second = run(args, dir);
  ASSERT_EQ(second.exit_code, 0) << second.err;
  expect_same_checkpoint(dir + "/straight/checkpoints/last.safetensors",
                         dir + "/split/checkpoints/last.safetensors");
}

// The same in quasi-random order, on the small config's data packed (shuffled): the chunks'
// order, the windows and the read-ahead all restart from the checkpoint's position.
TEST(Train, QuasiRandomResumeOnAPackedSetIsBitIdentical) {
  const auto dir = test::temp_dir("quasi");
  for (const char* split : {"train", "val"}) {
    std::vector<std::string> pack = {
        "alexnet-prep", "pack", "--config", test::source_path("configs/small.yaml"),
        "--split",      split,  "--out",    dir + "/" + split};
    for (size_t i = 0; i < 2; ++i) pack.insert(pack.end(), {"--set", kResumeSets[i]});
    const auto r = run(pack, dir);
    ASSERT_EQ(r.exit_code, 0) << r.err;
  }
  auto sets = [&](int steps) {
    auto s = with_steps(steps);
    s.insert(s.end(), {"data.source=packed", "data.train=" + dir + "/train",
                       "data.val=" + dir + "/val", "data.order=quasi_random",
                       "data.quasi_random.chunk=16", "data.quasi_random.window=4"});
    return s;
  };
  expect_resume_is_bit_identical(dir, sets);
}

TEST(Train, KeepsTheConfiguredNumberOfEpochCheckpoints) {
  const auto dir = test::temp_dir("keep");
  auto r =
      run(small(dir + "/run", {"data.synthetic.train_images=128", "data.synthetic.val_images=32",
                               "train.epochs=4", "checkpoint.keep=2"}),
          dir);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  namespace fs = std::filesystem;
  const auto ck = dir + "/run/checkpoints/";
  EXPECT_FALSE(fs::exists(ck + "epoch-001.safetensors"));
  EXPECT_FALSE(fs::exists(ck + "epoch-002.safetensors"));
  EXPECT_TRUE(fs::exists(ck + "epoch-003.safetensors"));
  EXPECT_TRUE(fs::exists(ck + "epoch-004.safetensors"));
  EXPECT_TRUE(fs::exists(ck + "last.safetensors"));
  EXPECT_TRUE(fs::exists(ck + "best.safetensors"));
  EXPECT_TRUE(fs::exists(dir + "/run/config.yaml"));
  EXPECT_NE(test::read_file(dir + "/run/train.log").find("epoch 4 done"), std::string::npos);
}

}  // namespace
}  // namespace alexnet
