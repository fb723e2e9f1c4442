// Runs alexnet's binaries from tests, the way a user would: arguments, exit status, output.
#pragma once

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

namespace alexnet::test {

struct RunResult {
  int exit_code = -1;  // 128 + signal when killed by one
  std::string out, err;
};

inline std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream s;
  s << f.rdbuf();
  return s.str();
}

inline std::string binary(const std::string& name) {
  return std::string(ALEXNET_BIN_DIR) + "/" + name;
}
inline std::string source_path(const std::string& rel) {
  return std::string(ALEXNET_SOURCE_DIR) + "/" + rel;
}

// Starts `args` (args[0] = a binary name in the build directory) in `workdir` with stdout and
// stderr to files; returns the pid.
inline pid_t start(const std::vector<std::string>& args, const std::string& workdir,
                   const std::string& out_file, const std::string& err_file) {
  const pid_t pid = fork();
  if (pid == 0) {
    if (::chdir(workdir.c_str()) != 0) _exit(127);
    const int out = ::open(out_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err = ::open(err_file.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(out, 1);
    ::dup2(err, 2);
    const std::string path = binary(args[0]);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(path.c_str()));
    for (size_t i = 1; i < args.size(); ++i) argv.push_back(const_cast<char*>(args[i].c_str()));
    // These are the CPU tests: on a machine with a GPU, --device auto would pick it, and what
    // they assert (bit-identical resume, exact numbers) is the CPU backend's. A test that is
    // about --device says so itself; tests/gpu covers the GPU.
    static const std::string device_option = "--device", cpu = "cpu";
    const bool takes_device = args[0] == "alexnet-train" || args[0] == "alexnet-eval" ||
                              args[0] == "alexnet-predict" || args[0] == "alexnet-bench";
    bool has_device = false;
    for (const auto& a : args) has_device = has_device || a.rfind(device_option, 0) == 0;
    if (takes_device && !has_device) {
      argv.push_back(const_cast<char*>(device_option.c_str()));
      argv.push_back(const_cast<char*>(cpu.c_str()));
    }
    argv.push_back(nullptr);
    ::execv(path.c_str(), argv.data());
    _exit(127);
  }
  return pid;
}

inline int wait_exit_code(pid_t pid) {
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return -1;
}

inline RunResult run(const std::vector<std::string>& args, const std::string& workdir) {
  const std::string out = workdir + "/.stdout", err = workdir + "/.stderr";
  RunResult r;
  r.exit_code = wait_exit_code(start(args, workdir, out, err));
  r.out = read_file(out);
  r.err = read_file(err);
  return r;
}

// The directories temp_dir made, removed when the test program exits (ALEXNET_KEEP_TEST_DIRS
// set keeps them for a look after a failure).
struct TempDirsRemovedAtExit {
  std::vector<std::filesystem::path> dirs;
  ~TempDirsRemovedAtExit() {
    if (std::getenv("ALEXNET_KEEP_TEST_DIRS") != nullptr) return;
    for (const auto& d : dirs) {
      std::error_code ec;
      std::filesystem::remove_all(d, ec);
    }
  }
};

// A fresh empty directory for one test.
inline std::string temp_dir(const std::string& name) {
  static TempDirsRemovedAtExit made;
  const auto dir = std::filesystem::temp_directory_path() /
                   ("alexnet-test-" + name + "-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  made.dirs.push_back(dir);
  return dir.string();
}

// A fresh directory for each test, removed afterwards (made writable first: some tests take
// the write permission away).
class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    static int counter = 0;
    dir_ = std::filesystem::temp_directory_path() /
           ("alexnet-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::permissions(dir_, std::filesystem::perms::owner_all,
                                 std::filesystem::perm_options::add, ec);
    std::filesystem::remove_all(dir_, ec);
  }
  std::filesystem::path dir_;
};

// The message of the alexnet::Error (or other std::exception) `f` throws; "(no error)" if none.
inline std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const std::exception& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace alexnet::test
