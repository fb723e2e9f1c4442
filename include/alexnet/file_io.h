// The few POSIX file loops that the writers and readers of large files share.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace alexnet {

// Writes all n bytes (retrying short writes and EINTR). 0 on success, else errno.
int write_all(int fd, const void* data, size_t n);
// Reads exactly n bytes at `offset`. 0 on success, -1 at end of file, else errno.
int pread_all(int fd, void* data, size_t n, uint64_t offset);
// strerror(err) as a string.
std::string errno_string(int err);

}  // namespace alexnet
