#include "src/train/run_dir.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <vector>

#include "alexnet/error.h"

namespace fs = std::filesystem;

namespace alexnet {

std::string RunDir::epoch_file(int epoch) const {
  char name[40];
  std::snprintf(name, sizeof name, "/epoch-%03d.safetensors", epoch);
  return checkpoints() + name;
}

void prepare_run_dir(const RunDir& dir) {
  std::error_code ec;
  fs::create_directories(dir.checkpoints(), ec);
  if (ec)
    throw Error("cannot create output directory '" + dir.checkpoints() + "': " + ec.message());
  for (const std::string& d : {dir.root, dir.checkpoints()}) {
    const std::string probe = d + "/.write-test-" + std::to_string(::getpid());
    const int fd = ::open(probe.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
      throw Error("cannot write to output directory '" + d + "': " + std::strerror(errno));
    ::close(fd);
    ::unlink(probe.c_str());
  }
}

static std::vector<fs::path> epoch_checkpoints(const RunDir& dir) {
  std::vector<fs::path> files;
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(dir.checkpoints(), ec)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("epoch-", 0) == 0 && e.path().extension() == ".safetensors")
      files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());  // zero-padded numbers sort as names
  return files;
}

bool has_checkpoints(const RunDir& dir) {
  return fs::exists(dir.last()) || fs::exists(dir.best()) || !epoch_checkpoints(dir).empty();
}

std::string newest_checkpoint(const RunDir& dir) {
  if (fs::exists(dir.last())) return dir.last();
  const auto files = epoch_checkpoints(dir);
  return files.empty() ? std::string() : files.back().string();
}

void prune_epoch_checkpoints(const RunDir& dir, int keep) {
  if (keep <= 0) return;
  auto files = epoch_checkpoints(dir);
  for (size_t i = 0; i + static_cast<size_t>(keep) < files.size(); ++i) {
    std::error_code ec;
    fs::remove(files[i], ec);
  }
}

}  // namespace alexnet
