// One exception type for problems a user can cause (bad path, bad key, corrupt file).
// The binaries catch it and print its message as one line with a non-zero exit;
// anything else escaping is a bug in alexnet.
#pragma once

#include <stdexcept>
#include <string>

namespace alexnet {

struct Error : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace alexnet
