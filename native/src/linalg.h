#pragma once
// Dense symmetric positive-definite solves in double for the edit methods: ROME's C⁻¹k,
// MEMIT's (λC + KKᵀ)⁻¹K. The factor is kept so that every later edit of the same layer costs
// O(n²) instead of O(n³).
#include <vector>

namespace graft {

// Σ a[k] b[k], with AVX2/FMA where the CPU has it.
double dot(const double * a, const double * b, int n);

class Cholesky {
public:
    // Factors a (n × n, row-major, symmetric) + ridge·I as L·Lᵀ. Throws GraftError when the
    // matrix is not positive definite (e.g. second moments of too few tokens).
    Cholesky(const std::vector<double> & a, int n, double ridge);
    int size() const { return n_; }
    std::vector<double> solve(const std::vector<double> & b) const;
    double log_determinant() const;

private:
    int n_;
    std::vector<double> l_;  // lower triangle, row-major
};

}  // namespace graft
