// A data source with no samples of its own: it only tells a BatchLoader the stored image size
// and the classes, for images staged by hand (alexnet-predict, and its test).
#pragma once

#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "alexnet/data.h"

namespace alexnet {

class NoFiles final : public DataSource {
 public:
  NoFiles(int size, std::vector<std::string> classes) : size_(size), classes_(std::move(classes)) {}
  int64_t size() const override { return 0; }
  int image_size() const override { return size_; }
  const std::vector<std::string>& classes() const override { return classes_; }
  int32_t load(int64_t, uint8_t*) const override { throw std::logic_error("no files"); }

 private:
  int size_;
  std::vector<std::string> classes_;
};

}  // namespace alexnet
