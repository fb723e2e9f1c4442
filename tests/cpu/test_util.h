// Helpers shared by the CPU tests: seeded random data and finite-difference gradients.
#pragma once

#include <cmath>
#include <cstdint>
#include <functional>
#include <random>
#include <vector>

namespace alexnet::test {

template <class T>
std::vector<T> random_vector(size_t count, uint32_t seed, double lo = -1.0, double hi = 1.0) {
  std::mt19937 gen(seed);
  std::uniform_real_distribution<double> dist(lo, hi);
  std::vector<T> v(count);
  for (auto& e : v) e = static_cast<T>(dist(gen));
  return v;
}

// Central difference of the scalar function f with respect to every element of x
// (x is perturbed in place and restored). The reference gradients the tests compare with.
inline std::vector<double> numeric_gradient(std::vector<double>& x,
                                            const std::function<double()>& f, double eps = 1e-6) {
  std::vector<double> g(x.size());
  for (size_t i = 0; i < x.size(); ++i) {
    const double saved = x[i];
    x[i] = saved + eps;
    const double plus = f();
    x[i] = saved - eps;
    const double minus = f();
    x[i] = saved;
    g[i] = (plus - minus) / (2 * eps);
  }
  return g;
}

// Finite differences (eps 1e-6) in double carry a rounding floor of about
// 1e-16 * |loss| / eps ~ 1e-9 in absolute terms, so errors are measured relative to
// kFdAtol + |gradient|: 1e-6 relative for gradients above 1e-2, 1e-8 absolute below.
constexpr double kFdAtol = 1e-2;

// Largest |a - b| / (atol + |b|) over the elements: the llm.c form of a tolerance.
// A NaN anywhere or a size mismatch is an infinite error, never a pass.
inline double max_rel_error(const std::vector<double>& a, const std::vector<double>& b,
                            double atol = 1e-8) {
  if (a.size() != b.size()) return INFINITY;
  double worst = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double e = std::abs(a[i] - b[i]) / (atol + std::abs(b[i]));
    if (!(e <= worst)) worst = std::isnan(e) ? INFINITY : e;
  }
  return worst;
}

// A loss whose gradient with respect to y is a fixed random vector: L = sum_i w_i * y_i.
inline double weighted_sum(const std::vector<double>& y, const std::vector<double>& weights) {
  double s = 0;
  for (size_t i = 0; i < y.size(); ++i) s += y[i] * weights[i];
  return s;
}

}  // namespace alexnet::test
