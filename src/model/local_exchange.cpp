#include <vector>

#include "alexnet/exchange.h"
#include "alexnet/ops.h"

namespace alexnet {
namespace {

class LocalExchange final : public Exchange {
 public:
  std::vector<std::vector<Tensor>> all_gather(const char*, const std::vector<Tensor>& own,
                                              int64_t) override {
    return std::vector<std::vector<Tensor>>(own.size(), own);
  }

  void reduce_scatter(const char*, const std::vector<std::vector<Tensor>>& partial,
                      std::vector<Tensor>& out, int64_t count) override {
    const size_t towers = partial.size();
    for (size_t r = 0; r < out.size(); ++r) {
      std::vector<const Tensor*> inputs;
      for (size_t t = 0; t < towers; ++t) inputs.push_back(&partial[t][r]);
      ops::sum_into(count, inputs.data(), static_cast<int>(inputs.size()), out[r]);
    }
  }
};

}  // namespace

std::unique_ptr<Exchange> make_local_exchange() {
  return std::make_unique<LocalExchange>();
}

}  // namespace alexnet
