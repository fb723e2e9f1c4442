// The data source a config names.
#include "alexnet/data.h"
#include "alexnet/error.h"
#include "alexnet/packed.h"

namespace alexnet {

std::unique_ptr<DataSource> make_source(const Config& config, Split split,
                                        const std::vector<std::string>* classes) {
  if (config.data.source == "synthetic") return make_synthetic_source(config, split);
  if (config.data.source == "folder") return make_folder_source(config, split, classes);
  // packed: the directories alexnet-prep pack wrote (their classes must agree)
  const std::string& dir = split == Split::train ? config.data.train : config.data.val;
  if (dir.empty())
    throw Error(std::string(split == Split::train ? "data.train" : "data.val") +
                " is not set (a directory written by alexnet-prep pack)");
  return make_packed_source(dir, classes);
}

}  // namespace alexnet
