// alexnet-bench --input: the whole path a training step waits on, per thread count.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace alexnet {

// `path` is a JPEG tree (class folders, as data.source: folder reads) or a packed directory
// (alexnet-prep pack). For each thread count: images/s of the loader's decode (read, decode,
// resize into the batch buffer: a GPU run's threads), and with the training augmentation (crop,
// flip, lighting, mean, to floats: a CPU run's), beside raw tjDecompress of the same bytes on as
// many threads (the ceiling), the ratio, and the scaling efficiency against one thread. A tree of
// full-size JPEGs is measured with and without DCT scaling. `sets` override config keys
// (data.image_size, data.order, ...). `cold`: the files are dropped from the page cache before
// every run, so that they are read from the disk, as a set larger than RAM is.
void bench_input(const std::string& path, const std::vector<int>& threads, int64_t images,
                 const std::vector<std::string>& sets, bool cold);

}  // namespace alexnet
