// Data-parallel training over MPI ranks on the CPU, run as a user runs it: mpirun -np N
// alexnet-train. N ranks take the step one process takes with the same global batch (up to the
// order of the sums), a run is reproducible bit for bit for a given N, a checkpoint moves between
// rank counts, and bad input is one line from rank 0 with no run directory made.
// The collectives themselves run in this binary under mpirun (DistRanks.*, started by
// Dist.CollectivesUnderMpirun). Skipped, saying why, without mpirun or in a build without MPI.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "alexnet/config.h"
#include "alexnet/dist.h"
#include "alexnet/net.h"
#include "alexnet/safetensors.h"
#include "alexnet/train.h"
#include "run_binary.h"

namespace alexnet {
namespace {

// MPI_Finalize after the last test, in a binary that mpirun started.
struct FinalizeMpi : testing::Environment {
  void TearDown() override { dist::finalize_world(); }
};
[[maybe_unused]] testing::Environment* const kFinalizeMpi =
    testing::AddGlobalTestEnvironment(new FinalizeMpi);

// Why mpirun cannot be used here, or "".
std::string mpirun_missing() {
#ifndef ALEXNET_HAVE_MPI
  return "this build has no MPI (ALEXNET_MPI=OFF)";
#else
  if (std::system("command -v mpirun >/dev/null 2>&1") != 0)
    return "mpirun is not installed (Debian: openmpi-bin)";
  return "";
#endif
}

#define SKIP_WITHOUT_MPIRUN()                                      \
  do {                                                             \
    const std::string why = mpirun_missing();                      \
    if (!why.empty()) GTEST_SKIP() << "MPI test skipped: " << why; \
  } while (0)

// The start of an mpirun command line in `workdir`: root is allowed (CI runs as root), and more
// ranks than cores (the CI machine has two). Under
// AddressSanitizer the ranks do not check for leaks: Open MPI leaves its own allocations (many in
// components it has unloaded) at exit. The same training code is leak-checked in the one-process
// tests.
std::string mpirun_prefix(const std::string& workdir) {
  return "cd '" + workdir +
         "' && export ASAN_OPTIONS=\"${ASAN_OPTIONS:-}:detect_leaks=0\" && exec mpirun "
         "--allow-run-as-root --oversubscribe";
}

// `mpirun -np ranks program args...` in `workdir`; program is a path.
test::RunResult mpirun(int ranks, const std::string& program, const std::vector<std::string>& args,
                       const std::string& workdir) {
  std::string command =
      mpirun_prefix(workdir) + " -np " + std::to_string(ranks) + " '" + program + "'";
  for (const auto& a : args) command += " '" + a + "'";
  command += " >'" + workdir + "/.mpi-out' 2>'" + workdir + "/.mpi-err'";
  test::RunResult r;
  const int status = std::system(command.c_str());
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  r.out = test::read_file(workdir + "/.mpi-out");
  r.err = test::read_file(workdir + "/.mpi-err");
  return r;
}

// alexnet-train on the small config for `steps` steps (20 per epoch), CPU.
std::vector<std::string> train_args(const std::string& out, int steps,
                                    std::vector<std::string> sets = {}) {
  std::vector<std::string> args = {
      "--config", test::source_path("configs/small.yaml"), "--device", "cpu", "--out", out};
  sets.insert(sets.begin(), {"data.synthetic.train_images=640", "data.synthetic.val_images=64",
                             "train.log_every=5", "train.max_steps=" + std::to_string(steps)});
  for (const auto& s : sets) args.insert(args.end(), {"--set", s});
  return args;
}

test::RunResult train_one_process(std::vector<std::string> args, const std::string& workdir) {
  args.insert(args.begin(), "alexnet-train");
  return test::run(args, workdir);
}

test::RunResult train_ranks(int ranks, const std::vector<std::string>& args,
                            const std::string& workdir) {
  return mpirun(ranks, test::binary("alexnet-train"), args, workdir);
}

std::vector<float> floats(const SafetensorsTensor& t) {
  std::vector<float> v(t.data.size() / sizeof(float));
  std::memcpy(v.data(), t.data.data(), v.size() * sizeof(float));
  return v;
}

// Every weight of b within `tolerance` of a's, relative to the tensor's largest weight (a sum in
// another order moves an element by a rounding of the terms, not of itself). Returns the worst.
double expect_weights_close(const std::string& a, const std::string& b, double tolerance) {
  const auto fa = read_safetensors(a), fb = read_safetensors(b);
  EXPECT_EQ(fa.metadata.at("step"), fb.metadata.at("step"));
  double worst = 0;
  int weights = 0;
  for (const auto& [name, t] : fa.tensors) {
    // The parameters: what has a momentum (not the momenta, nor the data statistics).
    if (fa.find("momentum." + name) == nullptr) continue;
    const auto* u = fb.find(name);
    if (u == nullptr) {
      ADD_FAILURE() << name << " missing from " << b;
      continue;
    }
    const auto x = floats(t), y = floats(*u);
    EXPECT_EQ(x.size(), y.size()) << name;
    double largest = 0, diff = 0;
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      largest = std::max(largest, std::abs(double{x[i]}));
      diff = std::max(diff, std::abs(double{x[i]} - double{y[i]}));
    }
    const double relative = largest > 0 ? diff / largest : diff;
    EXPECT_LE(relative, tolerance) << name;
    worst = std::max(worst, relative);
    ++weights;
  }
  EXPECT_EQ(weights, 16);
  return worst;
}

// val_top1_err of the last row of a run's metrics.csv.
double last_val_error(const std::string& run) {
  std::istringstream in(test::read_file(run + "/metrics.csv"));
  std::string row, last;
  while (std::getline(in, row))
    if (!row.empty()) last = row;
  std::istringstream fields(last);
  std::string f;
  for (int i = 0; i < 6; ++i) std::getline(fields, f, ',');  // the sixth: val_top1_err
  return std::stod(f);
}

bool same_bits(const std::string& a, const std::string& b) {
  const auto fa = read_safetensors(a), fb = read_safetensors(b);
  if (fa.tensors.size() != fb.tensors.size()) return false;
  for (const auto& [name, t] : fa.tensors) {
    const auto* u = fb.find(name);
    if (u == nullptr || u->data != t.data) return false;
  }
  return true;
}

// N ranks with the global batch of one process take its step: 20 steps (with an end-of-epoch
// validation split over the ranks) end within 1e-6 of its weights, and a second run
// of N ranks gives the same bits. 3 ranks with a batch of 48 (32 does not divide).
TEST(Dist, RanksTakeTheStepOfOneProcess) {
  SKIP_WITHOUT_MPIRUN();
  const auto dir = test::temp_dir("dist-step");
  for (const auto& [ranks, batch] : {std::pair{2, 32}, std::pair{3, 48}}) {
    SCOPED_TRACE(std::to_string(ranks) + " ranks, batch " + std::to_string(batch));
    const std::string tag = std::to_string(ranks);
    const std::vector<std::string> sets = {"data.batch_size=" + std::to_string(batch)};
    const auto one = train_one_process(train_args(dir + "/one-" + tag, 20, sets), dir);
    ASSERT_EQ(one.exit_code, 0) << one.err;
    const auto many = train_ranks(ranks, train_args(dir + "/ranks-" + tag, 20, sets), dir);
    ASSERT_EQ(many.exit_code, 0) << many.err;
    EXPECT_NE(many.out.find("rank 0 of " + tag), std::string::npos) << many.out;
    const auto again = train_ranks(ranks, train_args(dir + "/again-" + tag, 20, sets), dir);
    ASSERT_EQ(again.exit_code, 0) << again.err;

    const std::string last = "/checkpoints/last.safetensors";
    const double worst =
        expect_weights_close(dir + "/one-" + tag + last, dir + "/ranks-" + tag + last, 1e-6);
    std::printf("%d ranks against one process after 20 steps: weights within %.2e\n", ranks, worst);
    EXPECT_TRUE(same_bits(dir + "/ranks-" + tag + last, dir + "/again-" + tag + last))
        << "two runs of " << ranks << " ranks differ";
    // Rank 0 writes the run directory; every other rank its own log.
    for (int r = 1; r < ranks; ++r)
      EXPECT_TRUE(std::filesystem::exists(dir + "/ranks-" + tag + "/train.rank-" +
                                          std::to_string(r) + ".log"));
    // The end-of-epoch validation, split over the ranks, sees every image once: the same error
    // as one process's (give or take an image whose top class the rounding flips).
    EXPECT_NEAR(last_val_error(dir + "/ranks-" + tag), last_val_error(dir + "/one-" + tag),
                1.5 / 64);
  }
}

// A checkpoint does not depend on the rank count: 2 ranks for 10 steps, then 1 process for 10
// more, ends where 20 steps of one process end.
TEST(Dist, ResumeAcrossRankCounts) {
  SKIP_WITHOUT_MPIRUN();
  const auto dir = test::temp_dir("dist-resume");
  const auto straight = train_one_process(train_args(dir + "/straight", 20), dir);
  ASSERT_EQ(straight.exit_code, 0) << straight.err;
  const auto first = train_ranks(2, train_args(dir + "/split", 10), dir);
  ASSERT_EQ(first.exit_code, 0) << first.err;
  auto args = train_args(dir + "/split", 20);
  args.insert(args.end(), {"--resume", "auto"});
  const auto second = train_one_process(args, dir);
  ASSERT_EQ(second.exit_code, 0) << second.err;
  EXPECT_NE(second.out.find("resuming"), std::string::npos) << second.out;
  expect_weights_close(dir + "/straight/checkpoints/last.safetensors",
                       dir + "/split/checkpoints/last.safetensors", 1e-6);
}

// Bad input under mpirun: one line, from rank 0, and no run directory.
TEST(Dist, BadInputIsOneLineFromRankZero) {
  SKIP_WITHOUT_MPIRUN();
  const auto dir = test::temp_dir("dist-bad");
  auto count = [](const std::string& text, const std::string& what) {
    size_t n = 0;
    for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
    return n;
  };
  // A global batch that does not divide over the ranks, naming both numbers.
  const auto r = train_ranks(3, train_args(dir + "/run", 5), dir);
  EXPECT_NE(r.exit_code, 0);
  EXPECT_EQ(count(r.err, "alexnet-train: error: data.batch_size = 32 does not divide over 3 ranks"),
            1u)
      << r.err;
  EXPECT_FALSE(std::filesystem::exists(dir + "/run"));

  // A rank whose config differs from rank 0's (MPMD: each rank its own command line).
  std::string command = mpirun_prefix(dir);
  for (const std::string lr : {"0.01", "0.02"}) {
    if (lr != "0.01") command += " :";
    command += " -np 1 '" + test::binary("alexnet-train") + "'";
    for (const auto& a : train_args(dir + "/run", 5, {"optim.lr=" + lr})) command += " '" + a + "'";
  }
  command += " >'" + dir + "/out' 2>'" + dir + "/err'";
  EXPECT_NE(std::system(command.c_str()), 0);
  const std::string err = test::read_file(dir + "/err");
  EXPECT_EQ(count(err,
                  "alexnet-train: error: rank 1's run differs from rank 0's under "
                  "'optim:': '  lr: 0.02' against '  lr: 0.01'"),
            1u)
      << err;
  EXPECT_FALSE(std::filesystem::exists(dir + "/run"));
}

// ------------------------------------------------------------------ signals and failures
// `mpirun -np ranks alexnet-train args...` started in the background; returns mpirun's pid.
pid_t start_training(int ranks, const std::vector<std::string>& args, const std::string& workdir) {
  std::string command = mpirun_prefix(workdir) + " -np " + std::to_string(ranks) + " '" +
                        test::binary("alexnet-train") + "'";
  for (const auto& a : args) command += " '" + a + "'";
  command += " >'" + workdir + "/.mpi-out' 2>'" + workdir + "/.mpi-err'";
  const pid_t pid = fork();
  if (pid == 0) {
    ::execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
    _exit(127);
  }
  return pid;
}

// The pid a rank logged at its start ("... (local rank R, pid P): ..."), once it has logged
// `step` steps; -1 when that does not happen within a minute.
pid_t rank_pid_after(const std::string& log, int step) {
  for (int i = 0; i < 6000; ++i) {
    const std::string text = test::read_file(log);
    const auto at = text.find(", pid ");
    if (at != std::string::npos &&
        text.find("step " + std::to_string(step) + "/") != std::string::npos)
      return static_cast<pid_t>(std::stol(text.substr(at + 6)));
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return -1;
}

// mpirun's exit status, waiting at most `seconds`: a job that never ends is killed and fails.
int wait_for_job(pid_t pid, int seconds) {
  for (int i = 0; i < seconds * 100; ++i) {
    int status = 0;
    if (::waitpid(pid, &status, WNOHANG) == pid)
      return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  ::kill(pid, SIGKILL);
  ::waitpid(pid, nullptr, 0);
  ADD_FAILURE() << "the job did not end within " << seconds << " s";
  return -1;
}

// SIGTERM to mpirun (which passes it to every rank) or to one rank alone: every rank stops after
// the same step, rank 0 writes the checkpoint, and resuming it on 2 ranks ends where 2 ranks
// running straight end, bit for bit.
TEST(Dist, SigtermStopsEveryRankAtOneStepAndResumesExactly) {
  SKIP_WITHOUT_MPIRUN();
  const auto dir = test::temp_dir("dist-sigterm");
  const int steps = 200;
  const auto straight =
      train_ranks(2, train_args(dir + "/straight", steps, {"train.epochs=20"}), dir);
  ASSERT_EQ(straight.exit_code, 0) << straight.err;
  for (const bool to_launcher : {true, false}) {
    SCOPED_TRACE(to_launcher ? "SIGTERM to mpirun" : "SIGTERM to rank 1");
    const std::string out = dir + (to_launcher ? "/launcher" : "/rank");
    const pid_t job = start_training(2, train_args(out, steps, {"train.epochs=20"}), dir);
    const pid_t rank1 = rank_pid_after(out + "/train.rank-1.log", 5);
    ASSERT_GT(rank1, 0) << test::read_file(dir + "/.mpi-err");
    ::kill(to_launcher ? job : rank1, SIGTERM);
    EXPECT_NE(wait_for_job(job, 60), 0);
    const auto stopped = read_safetensors(out + "/checkpoints/last.safetensors");
    const std::string at = stopped.metadata.at("step");
    std::printf("%s stopped the job after step %s of %d\n",
                to_launcher ? "SIGTERM to mpirun" : "SIGTERM to rank 1", at.c_str(), steps);
    ASSERT_LT(std::stoi(at), steps) << "the run finished before the signal; nothing was tested";
    for (const std::string log : {"/train.log", "/train.rank-1.log"})
      EXPECT_NE(test::read_file(out + log).find("stopped by SIGTERM after step " + at + ";"),
                std::string::npos)
          << log << ": " << test::read_file(out + log);

    auto args = train_args(out, steps, {"train.epochs=20"});
    args.insert(args.end(), {"--resume", "auto"});
    const auto resumed = train_ranks(2, args, dir);
    ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
    EXPECT_TRUE(same_bits(dir + "/straight/checkpoints/last.safetensors",
                          out + "/checkpoints/last.safetensors"));
  }
}

// A rank killed (-9) or hung (stopped) mid-epoch ends the job: killed, mpirun ends it at once and
// the surviving rank says which collective it was waiting in; hung, the waiting rank gives up
// after dist.timeout_s and says so. The exit status is not 0, and the last checkpoint loads.
TEST(Dist, ADeadOrHungRankEndsTheJobWithANamedError) {
  SKIP_WITHOUT_MPIRUN();
  const auto dir = test::temp_dir("dist-failure");
  for (const bool hang : {false, true}) {
    SCOPED_TRACE(hang ? "rank 1 hangs" : "rank 1 is killed");
    const std::string out = dir + (hang ? "/hang" : "/kill");
    // 30 steps: the checkpoint of epoch 1 (step 20) is on disk before the failure.
    const pid_t job = start_training(2, train_args(out, 600, {"dist.timeout_s=3"}), dir);
    const pid_t rank1 = rank_pid_after(out + "/train.rank-1.log", 30);
    ASSERT_GT(rank1, 0) << test::read_file(dir + "/.mpi-err");
    ::kill(rank1, hang ? SIGSTOP : SIGKILL);
    EXPECT_NE(wait_for_job(job, 60), 0);
    const std::string err = test::read_file(dir + "/.mpi-err");
    // Rank 0 names itself, its host and the collective it waited in: given up after the
    // timeout, stopped by the launcher while waiting, or told by MPI that the peer is gone.
    EXPECT_NE(err.find("rank 0 of 2"), std::string::npos) << err;
    if (hang) {
      EXPECT_NE(err.find("no answer from the other ranks in the "), std::string::npos) << err;
      EXPECT_NE(err.find("after 3 s (dist.timeout_s): a rank died or hangs"), std::string::npos)
          << err;
    } else {
      EXPECT_TRUE(err.find("while waiting for the other ranks in the ") != std::string::npos ||
                  err.find("no answer from the other ranks in the ") != std::string::npos ||
                  err.find(": error: MPI: the ") != std::string::npos)
          << err;
      EXPECT_NE(err.find("rank 1"), std::string::npos) << err;  // mpirun's line
    }
    const auto last = read_safetensors(out + "/checkpoints/last.safetensors");
    EXPECT_GE(std::stoi(last.metadata.at("step")), 20);
    if (hang) ::kill(rank1, SIGKILL);  // in case the launcher left it stopped
  }
}

// ------------------------------------------------------------------ the collectives, in ranks
// Started by Dist.CollectivesUnderMpirun in 3 ranks; on their own they skip.
class DistRanks : public testing::Test {
 protected:
  void SetUp() override {
    if (std::getenv("ALEXNET_TEST_DIST_RANKS") == nullptr)
      GTEST_SKIP() << "runs in ranks that Dist.CollectivesUnderMpirun starts";
    dist::init_world();
    dist::set_timeout(30);  // a broken agreement fails the test instead of hanging it
  }
};

// The sum is taken in rank order: (1 + 1e8) - 1e8 is 0 in float (1 + 1e8 rounds to 1e8), while
// 1 + (1e8 - 1e8) and the reverse order give 1. Element by element over every rank's chunk.
TEST_F(DistRanks, AllreduceSumsInRankOrder) {
  const dist::World& w = dist::world();
  ASSERT_EQ(w.size, 3);
  const float term[3] = {1.0f, 1e8f, -1e8f};
  std::vector<float> data(1001, term[w.rank]);
  data[1000] = static_cast<float>(w.rank + 1);  // 1 + 2 + 3
  dist::allreduce_sum(data.data(), static_cast<int64_t>(data.size()), "the test's all-reduce");
  for (size_t i = 0; i < 1000; ++i) ASSERT_EQ(data[i], 0.0f) << "element " << i;
  EXPECT_EQ(data[1000], 6.0f);
  double d[2] = {static_cast<double>(w.rank), 1.0};
  dist::allreduce_sum(d, 2, "the test's all-reduce");
  EXPECT_EQ(d[0], 3.0);
  EXPECT_EQ(d[1], 3.0);
}

TEST_F(DistRanks, GatherBroadcastAndAgreement) {
  const dist::World& w = dist::world();
  const auto all = dist::allgather(std::string(static_cast<size_t>(w.rank), 'x'), "the test");
  ASSERT_EQ(all.size(), 3u);
  for (size_t r = 0; r < 3; ++r) EXPECT_EQ(all[r], std::string(r, 'x'));
  EXPECT_EQ(dist::broadcast(w.rank == 0 ? "from rank 0" : "", "the test"), "from rank 0");
  EXPECT_NO_THROW(dist::agree_on_errors(""));
  // Rank 1 alone fails: every rank throws its message, naming rank 1; only rank 0 says it.
  try {
    dist::agree_on_errors(w.rank == 1 ? "no such file" : "");
    ADD_FAILURE() << "no error";
  } catch (const dist::AgreedError& e) {
    EXPECT_NE(std::string(e.what()).find("rank 1 ("), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("): no such file"), std::string::npos) << e.what();
    EXPECT_EQ(e.report, w.rank == 0);
  }
  dist::barrier("the test's barrier");
}

// The replicas' weights compared: alike after the same init, and one weight of rank 2 changed by
// one ulp is named, on every rank, by rank 0 alone.
TEST_F(DistRanks, DriftedWeightsEndTheRunNamingTheRank) {
  const Config c = load_config(test::source_path("configs/small.yaml"), {});
  Net net(c, 1);
  net.init(7);
  EXPECT_NO_THROW(check_replicas_agree(net, 10));
  const dist::World& w = dist::world();
  if (w.rank == 2) {
    float& x = net.params().back().value.data<float>()[0];
    x = std::nextafter(x, 1.0f);
  }
  try {
    check_replicas_agree(net, 20);
    ADD_FAILURE() << "no error";
  } catch (const dist::AgreedError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("after step 20: rank(s) 2 ("), std::string::npos) << what;
    EXPECT_EQ(what.find("rank(s) 1"), std::string::npos) << what;
    EXPECT_EQ(e.report, w.rank == 0);
  }
}

TEST(Dist, CollectivesUnderMpirun) {
  SKIP_WITHOUT_MPIRUN();
  const auto dir = test::temp_dir("dist-collectives");
  ::setenv("ALEXNET_TEST_DIST_RANKS", "1", 1);
  const auto self = std::filesystem::read_symlink("/proc/self/exe").string();
  const auto r = mpirun(3, self, {"--gtest_filter=DistRanks.*", "--gtest_color=no"}, dir);
  ::unsetenv("ALEXNET_TEST_DIST_RANKS");
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  // Each of the 3 ranks ran every test.
  size_t passed = 0;
  for (size_t at = r.out.find("PASSED  ] 3 tests."); at != std::string::npos;
       at = r.out.find("PASSED  ] 3 tests.", at + 1))
    ++passed;
  EXPECT_EQ(passed, 3u) << r.out;
}

}  // namespace
}  // namespace alexnet
