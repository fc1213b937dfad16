#include "second_moments.h"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <set>
#include <sys/stat.h>

#include "errors.h"
#include "ggml-alloc.h"
#include "ggml-backend.h"
#include "ggml.h"
#include "moments_file.h"

namespace graft {

namespace {

// acc += Kᵀ K, with the product computed in float by ggml's mul_mat: n_ff² · n_tok
// multiply-adds per chunk would dominate a plain loop. On the CPU (tinyBLAS sgemm where
// available) each chunk's product goes straight into the double accumulator. On a GPU the
// products are summed on the device in float for up to kGpuChunksPerFlush chunks and then
// added to the double accumulator, because moving n_ff² floats to the host for every chunk
// would cost more than the forward pass.
class GramAccumulator {
public:
    GramAccumulator(int n_threads, bool gpu, int device_sums) {
        if (gpu) {
            for (size_t i = 0; i < ggml_backend_dev_count() && backend_ == nullptr; ++i) {
                ggml_backend_dev_t d = ggml_backend_dev_get(i);
                if (ggml_backend_dev_type(d) == GGML_BACKEND_DEVICE_TYPE_GPU) backend_ = ggml_backend_dev_init(d, nullptr);
            }
            sum_on_device_ = backend_ != nullptr && device_sums != 0;
            if (sum_on_device_) return;
        }
        sum_on_device_ = device_sums == 1;
        if (backend_ == nullptr) backend_ = ggml_backend_init_by_type(GGML_BACKEND_DEVICE_TYPE_CPU, nullptr);
        if (backend_ == nullptr) throw GraftError("ggml's CPU backend could not be started");
        ggml_backend_reg_t reg = ggml_backend_dev_backend_reg(ggml_backend_get_device(backend_));
        auto set_threads = reinterpret_cast<ggml_backend_set_n_threads_t>(ggml_backend_reg_get_proc_address(reg, "ggml_backend_set_n_threads"));
        if (set_threads != nullptr) set_threads(backend_, std::max(1, n_threads));
    }
    ~GramAccumulator() {
        release();
        release_gpu();
        ggml_backend_free(backend_);
    }
    GramAccumulator(const GramAccumulator &) = delete;
    GramAccumulator & operator=(const GramAccumulator &) = delete;

    // Everything summed on the device so far goes into acc (n_ff × n_ff doubles).
    void flush(double * acc) {
        if (!sum_on_device_ || pending_ == 0) return;
        const size_t n = static_cast<size_t>(gpu_n_ff_) * static_cast<size_t>(gpu_n_ff_);
        block_host_.resize(n);
        ggml_backend_tensor_get(gpu_acc_, block_host_.data(), 0, n * sizeof(float));
        for (size_t i = 0; i < n; ++i) acc[i] += static_cast<double>(block_host_[i]);
        ggml_backend_tensor_memset(gpu_acc_, 0, 0, n * sizeof(float));
        pending_ = 0;
    }

    void add(const float * keys, int n_tok, int n_ff, double * acc) {
        if (sum_on_device_) { add_on_device(keys, n_tok, n_ff, acc); return; }
        add_on_cpu(keys, n_tok, n_ff, acc);
    }

private:
    static constexpr int kGpuChunksPerFlush = 16;

    void add_on_device(const float * keys, int n_tok, int n_ff, double * acc) {
        if (n_tok != gpu_n_tok_ || n_ff != gpu_n_ff_) {
            flush(acc);
            release_gpu();
            ggml_init_params params{8 * ggml_tensor_overhead() + ggml_graph_overhead(), nullptr, true};
            gpu_ctx_ = ggml_init(params);
            if (gpu_ctx_ == nullptr) throw GraftError("out of memory creating the KᵀK graph");
            gpu_keys_ = ggml_new_tensor_2d(gpu_ctx_, GGML_TYPE_F32, n_ff, n_tok);  // a row of n_ff per token
            gpu_acc_ = ggml_new_tensor_2d(gpu_ctx_, GGML_TYPE_F32, n_ff, n_ff);
            ggml_tensor * kt = ggml_cont(gpu_ctx_, ggml_transpose(gpu_ctx_, gpu_keys_));
            gpu_graph_ = ggml_new_graph(gpu_ctx_);
            ggml_build_forward_expand(gpu_graph_, ggml_add_inplace(gpu_ctx_, gpu_acc_, ggml_mul_mat(gpu_ctx_, kt, kt)));
            gpu_buffer_ = ggml_backend_alloc_ctx_tensors(gpu_ctx_, backend_);
            if (gpu_buffer_ == nullptr) throw GraftError("not enough GPU memory for " + std::to_string(n_ff) + "² floats of KᵀK");
            ggml_backend_tensor_memset(gpu_acc_, 0, 0, ggml_nbytes(gpu_acc_));
            gpu_n_tok_ = n_tok;
            gpu_n_ff_ = n_ff;
        }
        ggml_backend_tensor_set(gpu_keys_, keys, 0, ggml_nbytes(gpu_keys_));
        if (ggml_backend_graph_compute(backend_, gpu_graph_) != GGML_STATUS_SUCCESS) throw GraftError("ggml failed to compute KᵀK");
        if (++pending_ >= kGpuChunksPerFlush) flush(acc);
    }

    void release_gpu() {
        if (gpu_buffer_ != nullptr) ggml_backend_buffer_free(gpu_buffer_);
        if (gpu_ctx_ != nullptr) ggml_free(gpu_ctx_);
        gpu_buffer_ = nullptr;
        gpu_ctx_ = nullptr;
        gpu_n_tok_ = gpu_n_ff_ = 0;
    }

    void add_on_cpu(const float * keys, int n_tok, int n_ff, double * acc) {
        // Zero rows pad the token count to a multiple of 16 so that sgemm takes the chunk;
        // they add nothing to the sum.
        const int padded = (n_tok + 15) / 16 * 16;
        prepare(padded, n_ff);
        std::fill(kt_host_.begin(), kt_host_.end(), 0.0f);
        for (int t = 0; t < n_tok; ++t) {
            const float * row = keys + static_cast<size_t>(t) * n_ff;
            for (int i = 0; i < n_ff; ++i) kt_host_[static_cast<size_t>(i) * padded + t] = row[i];
        }
        ggml_backend_tensor_set(kt_, kt_host_.data(), 0, kt_host_.size() * sizeof(float));
        if (ggml_backend_graph_compute(backend_, graph_) != GGML_STATUS_SUCCESS) throw GraftError("ggml failed to compute KᵀK");
        for (const Block & b : blocks_) {
            const size_t ni = static_cast<size_t>(b.i1 - b.i0), nj = static_cast<size_t>(b.j1 - b.j0);
            block_host_.resize(ni * nj);
            ggml_backend_tensor_get(b.product, block_host_.data(), 0, block_host_.size() * sizeof(float));
            // block_host_[x + y·ni] = C[i0 + x][j0 + y]; blocks off the diagonal fill both halves.
            for (size_t y = 0; y < nj; ++y) {
                const float * col = block_host_.data() + y * ni;
                double * row = acc + (static_cast<size_t>(b.j0) + y) * static_cast<size_t>(n_ff) + static_cast<size_t>(b.i0);
                for (size_t x = 0; x < ni; ++x) row[x] += static_cast<double>(col[x]);
                if (b.i0 != b.j0) {
                    for (size_t x = 0; x < ni; ++x) acc[(static_cast<size_t>(b.i0) + x) * static_cast<size_t>(n_ff) + b.j0 + y] += static_cast<double>(col[x]);
                }
            }
        }
    }

private:
    void prepare(int n_tok, int n_ff) {
        if (n_tok == n_tok_ && n_ff == n_ff_) return;
        release();
        ggml_init_params params{};
        params.mem_size = (2 + kBlocks + kBlocks * (kBlocks + 1) / 2) * ggml_tensor_overhead() + ggml_graph_overhead();
        params.no_alloc = true;
        ctx_ = ggml_init(params);
        if (ctx_ == nullptr) throw GraftError("out of memory creating the KᵀK graph");
        kt_ = ggml_new_tensor_2d(ctx_, GGML_TYPE_F32, n_tok, n_ff);  // Kᵀ: one row per key component
        // KᵀK is symmetric: only the blocks on and above the diagonal are computed
        // (kBlocks(kBlocks+1)/2 of kBlocks² blocks, 62% of the work at 4).
        graph_ = ggml_new_graph(ctx_);
        const int step = (n_ff + kBlocks - 1) / kBlocks;
        std::vector<ggml_tensor *> rows;
        std::vector<std::pair<int, int>> ranges;
        for (int r0 = 0; r0 < n_ff; r0 += step) {
            const int r1 = std::min(n_ff, r0 + step);
            rows.push_back(ggml_view_2d(ctx_, kt_, n_tok, r1 - r0, kt_->nb[1], static_cast<size_t>(r0) * kt_->nb[1]));
            ranges.emplace_back(r0, r1);
        }
        for (size_t bi = 0; bi < rows.size(); ++bi) {
            for (size_t bj = bi; bj < rows.size(); ++bj) {
                ggml_tensor * product = ggml_mul_mat(ctx_, rows[bi], rows[bj]);  // [rows_i, rows_j]
                ggml_build_forward_expand(graph_, product);
                blocks_.push_back({ranges[bi].first, ranges[bi].second, ranges[bj].first, ranges[bj].second, product});
            }
        }
        buffer_ = ggml_backend_alloc_ctx_tensors(ctx_, backend_);
        if (buffer_ == nullptr) throw GraftError("out of memory allocating " + std::to_string(n_ff) + "² floats for KᵀK");
        kt_host_.assign(static_cast<size_t>(n_tok) * n_ff, 0.0f);
        n_tok_ = n_tok;
        n_ff_ = n_ff;
    }
    void release() {
        blocks_.clear();
        if (buffer_ != nullptr) ggml_backend_buffer_free(buffer_);
        if (ctx_ != nullptr) ggml_free(ctx_);
        buffer_ = nullptr;
        ctx_ = nullptr;
        n_tok_ = n_ff_ = 0;
    }

    ggml_backend_t backend_ = nullptr;
    bool sum_on_device_ = false;
    ggml_context * gpu_ctx_ = nullptr;
    ggml_backend_buffer_t gpu_buffer_ = nullptr;
    ggml_tensor * gpu_keys_ = nullptr;
    ggml_tensor * gpu_acc_ = nullptr;
    ggml_cgraph * gpu_graph_ = nullptr;
    int gpu_n_tok_ = 0, gpu_n_ff_ = 0, pending_ = 0;
    ggml_context * ctx_ = nullptr;
    ggml_backend_buffer_t buffer_ = nullptr;
    struct Block {
        int i0, i1, j0, j1;
        ggml_tensor * product;
    };
    static constexpr int kBlocks = 4;
    ggml_tensor * kt_ = nullptr;
    ggml_cgraph * graph_ = nullptr;
    std::vector<Block> blocks_;
    std::vector<float> kt_host_;
    std::vector<float> block_host_;
    int n_tok_ = 0;
    int n_ff_ = 0;
};

bool file_exists(const std::string & path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}

struct LayerState {
    MomentsLayerTarget target;
    MomentsHeader header;      // of the checkpoint: kind checkpoint, matrix sum
    std::vector<double> sum;
    int64_t done = 0;          // tokens already in sum
    int64_t resumed_from = 0;
    std::unique_ptr<GramAccumulator> gram;
};

void write_checkpoint(LayerState & s) {
    s.gram->flush(s.sum.data());
    s.header.n = s.done;
    write_moments_file(s.target.checkpoint, s.header, s.sum.data());
}

}  // namespace

MomentsOutcome compute_second_moments(LlamaSession & session, const MomentsJob & job, const std::atomic<bool> & cancel,
                                      const std::function<void(const MomentsProgress &)> & progress) {
    const int64_t total = static_cast<int64_t>(job.tokens.size());
    if (total == 0) throw GraftError("the corpus has no tokens: there is nothing to accumulate");
    if (job.layers.empty()) throw GraftError("give at least one layer for the second moments");
    const int chunk = session.n_ctx();
    std::vector<LayerState> layers;
    std::set<int> seen;
    for (const auto & target : job.layers) {
        if (target.layer < 0 || target.layer >= session.n_layer()) {
            throw GraftError("layer " + std::to_string(target.layer) + " is out of range (the model has " + std::to_string(session.n_layer()) +
                             " layers, 0 to " + std::to_string(session.n_layer() - 1) + ")");
        }
        if (!seen.insert(target.layer).second) throw GraftError("layer " + std::to_string(target.layer) + " is listed twice");
        const int n_ff = session.n_ff(target.layer);
        if (n_ff <= 0) throw GraftError("layer " + std::to_string(target.layer) + " has no blk." + std::to_string(target.layer) + ".ffn_down.weight");
        LayerState s;
        s.target = target;
        s.header.kind = "checkpoint";
        s.header.matrix = "sum";
        s.header.layer = target.layer;
        s.header.n_ff = n_ff;
        s.header.token_count = total;
        s.header.context_size = chunk;
        s.header.model_sha256 = job.model_sha256;
        s.header.corpus_sha256 = job.corpus_sha256;
        if (file_exists(target.checkpoint)) {
            const MomentsHeader found = read_moments_file(target.checkpoint, &s.sum);
            const std::string why = moments_mismatch(found, s.header);
            if (!why.empty()) throw GraftError("the checkpoint " + target.checkpoint + " belongs to another job (" + why + "); delete it to start over");
            if (found.n < 0 || found.n > total || (found.n % chunk != 0 && found.n != total)) {
                throw GraftError("the checkpoint " + target.checkpoint + " is damaged (it counts " + std::to_string(found.n) + " tokens); delete it to start over");
            }
            s.done = s.resumed_from = found.n;
        } else {
            s.sum.assign(static_cast<size_t>(n_ff) * static_cast<size_t>(n_ff), 0.0);
        }
        layers.push_back(std::move(s));
    }

    int64_t start = total;
    for (const auto & s : layers) start = std::min(start, s.done);
    const int32_t bos = session.bos_token_if_added();
    for (auto & s : layers) s.gram = std::make_unique<GramAccumulator>(session.n_threads(), session.n_gpu_layers() > 0, job.device_sums);
    auto last_checkpoint = std::chrono::steady_clock::now();
    MomentsOutcome outcome;
    outcome.tokens_total = total;
    if (progress) progress({start, total});

    for (int64_t pos = start; pos < total; pos += chunk) {
        if (cancel.load()) {
            for (auto & s : layers) if (s.done > 0) write_checkpoint(s);
            outcome.cancelled = true;
            outcome.tokens_done = pos;
            return outcome;
        }
        const int64_t end = std::min<int64_t>(pos + chunk, total);
        std::vector<int32_t> tokens(job.tokens.begin() + pos, job.tokens.begin() + end);
        if (bos >= 0) tokens[0] = bos;
        CaptureRequest request;
        request.logprobs = false;
        for (const auto & s : layers) {
            if (s.done <= pos) {  // layers resumed further along skip chunks they hold
                request.key_layers.push_back(s.target.layer);
                request.stop_after_layer = std::max(request.stop_after_layer, s.target.layer);
            }
        }
        EvalResult result = session.evaluate(tokens, request);
        for (auto & s : layers) {
            if (s.done > pos) continue;
            const auto & keys = result.keys[s.target.layer];
            const int n_tok = static_cast<int>(tokens.size());
            if (keys.size() != static_cast<size_t>(n_tok) * static_cast<size_t>(s.header.n_ff)) {
                throw GraftError("llama.cpp produced " + std::to_string(keys.size()) + " key values for layer " + std::to_string(s.target.layer) +
                                 " where " + std::to_string(n_tok) + " × " + std::to_string(s.header.n_ff) + " were expected");
            }
            s.gram->add(keys.data(), n_tok, s.header.n_ff, s.sum.data());
            s.done = end;
        }
        if (progress) progress({end, total});
        const auto now = std::chrono::steady_clock::now();
        if (end < total && std::chrono::duration<double>(now - last_checkpoint).count() >= job.checkpoint_seconds) {
            for (auto & s : layers) write_checkpoint(s);
            last_checkpoint = std::chrono::steady_clock::now();
        }
    }

    for (auto & s : layers) {
        s.gram->flush(s.sum.data());
        MomentsHeader final_header = s.header;
        final_header.kind = "second-moments";
        final_header.matrix = "mean";
        final_header.n = total;
        std::vector<double> mean(s.sum.size());
        for (size_t i = 0; i < mean.size(); ++i) mean[i] = s.sum[i] / static_cast<double>(total);
        write_moments_file(s.target.file, final_header, mean.data());
        ::unlink(s.target.checkpoint.c_str());
        outcome.layers.push_back({s.target.layer, s.header.n_ff, total, s.target.file, s.resumed_from});
    }
    outcome.tokens_done = total;
    return outcome;
}

}  // namespace graft
