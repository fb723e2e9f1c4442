// The few POSIX file loops that the writers and readers of files share (src/io/file_io.cpp).
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
// Writes `text` to `path` atomically (temp file, fsync, rename), so a reader or a killed run
// never sees half a file; throws alexnet::Error naming the path.
void write_text_atomic(const std::string& path, const std::string& text);

}  // namespace alexnet
