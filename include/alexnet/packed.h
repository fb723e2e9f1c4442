// Packed datasets: the images of a source, already resized to S x S and stored as JPEG (or raw
// pixels) in a few large shard files, with one index. Reading them needs no directory walk and
// no resize, and the files are read sequentially: the fast path for training.
//
// Layout of a packed directory:
//   shard-NNNNN.bin          the encoded images of samples [NNNNN * per_shard, ...), back to back
//   shard-NNNNN.safetensors  that shard's index, written once the shard is complete (resume)
//   index.safetensors        the whole index (written last): I64 offset, I64 size, I32 shard,
//                            I32 label per sample; metadata: format "alexnet-packed/1", classes,
//                            class names, image size, encoding, order, counts
//
// By default the samples are packed in a random order (a fixed permutation of the source), not
// the source's class by class order: then any run of consecutive packed images is a random
// sample of the data, which data.order: quasi_random needs to read the data in large blocks.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "alexnet/data.h"

namespace alexnet {

struct PackOptions {
  std::string out_dir;
  int quality = 90;  // JPEG quality
  bool raw = false;  // store raw (S, S, 3) pixels instead of JPEG
  int64_t images_per_shard = 5000;
  int workers = 4;
  bool shuffle = true;  // pack in a fixed random order; false: the source's order
};

struct PackReport {
  int64_t written = 0;         // samples in the packed set
  int64_t reused = 0;          // of which taken from shards an interrupted run completed
  std::vector<BadSample> bad;  // samples skipped, with path and reason
};

// Packs every sample of `source` (already S x S, as the source decodes and resizes them) into
// out_dir. Resumable: complete shards of an earlier, interrupted run with the same options are
// kept. `progress(done, total)` is called from the calling thread now and then.
PackReport pack_source(const DataSource& source, const PackOptions& options,
                       const std::function<void(int64_t, int64_t)>& progress);

// A packed directory as a data source, which also hands out the stored bytes themselves:
// alexnet-bench times other decoders on exactly what the loader decodes.
class PackedDataSource : public DataSource {
 public:
  virtual bool raw() const = 0;  // raw (S, S, 3) pixels rather than JPEG files
  // Packed in a random order (so that consecutive samples are a random sample of the data)
  // rather than in the source's order (class by class, for a JPEG tree).
  virtual bool shuffled() const = 0;
  // The index in the packed source of sample `index` (its position in the packed set).
  virtual int64_t source_index(int64_t index) const = 0;
  // Sample `index`'s stored bytes, as load() reads them before decoding. Throws BadImage when
  // they cannot be read.
  virtual std::vector<uint8_t> stored_bytes(int64_t index) const = 0;
};

// A packed directory as a data source. `classes` (a checkpoint's) must match the packed set's.
std::unique_ptr<PackedDataSource> make_packed_source(const std::string& dir,
                                                     const std::vector<std::string>* classes);

}  // namespace alexnet
