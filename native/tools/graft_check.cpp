// graft-check: the engine's parity, gradient and speed checks without Node, for GPU servers
// (built by native/scripts/gpu-check.sh). Prints one JSON object per line and section.
//
//   graft-check suite --dir DIR [--gpu] [--threads N] [--big]
//   graft-check gen OUT --arch A --type T --layers N --embd E --ff F --heads H --kv-heads K --vocab V
//
// The suite generates its own random-weight models in DIR. Each section reports its numbers
// or, when it fails, {"error": "..."} so the other sections still run.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "errors.h"
#include "gguf_file.h"
#include "gguf_rewrite.h"
#include "graph_model.h"
#include "graph_run.h"
#include "llama_session.h"
#include "log_capture.h"
#include "moments_file.h"
#include "random_model.h"
#include "second_moments.h"
#include "tensor_codec.h"

using namespace graft;

namespace {

// ---- a minimal JSON writer -------------------------------------------------------------
struct Json {
    std::ostringstream out;
    std::vector<bool> first{true};
    void sep() {
        if (!first.back()) out << ',';
        first.back() = false;
    }
    Json & open(const std::string & k, char c) {
        if (!k.empty()) { sep(); out << '"' << k << "\":"; } else sep();
        out << c;
        first.push_back(true);
        return *this;
    }
    Json & close(char c) { out << c; first.pop_back(); return *this; }
    Json & num(const std::string & k, double v) {
        sep();
        out << '"' << k << "\":";
        if (std::isfinite(v)) out << v; else out << "null";
        return *this;
    }
    Json & str(const std::string & k, const std::string & v) {
        sep();
        out << '"' << k << "\":\"";
        for (char c : v) {
            if (c == '"' || c == '\\') out << '\\' << c;
            else if (c == '\n') out << "\\n";
            else if (static_cast<unsigned char>(c) >= 32) out << c;
        }
        out << '"';
        return *this;
    }
    Json & boolean(const std::string & k, bool v) { sep(); out << '"' << k << "\":" << (v ? "true" : "false"); return *this; }
};

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

template <typename F>
double seconds(F && fn) {
    const double t = now();
    fn();
    return now() - t;
}

template <typename F>
double median_seconds(int rounds, F && fn) {
    std::vector<double> t;
    for (int i = 0; i < rounds; ++i) t.push_back(seconds(fn));
    std::sort(t.begin(), t.end());
    return t[t.size() / 2];
}

struct Options {
    std::string dir = ".";
    bool gpu = false;
    bool big = false;
    bool big_smoke = false;
    int threads = 1;
};

std::vector<std::vector<int32_t>> random_prompts(const std::vector<int> & lengths, int vocab, uint32_t seed) {
    std::mt19937 rng(seed);
    std::uniform_int_distribution<int32_t> pick(3, vocab - 1);
    std::vector<std::vector<int32_t>> out;
    for (int n : lengths) {
        std::vector<int32_t> p = {1};
        while (static_cast<int>(p.size()) < n) p.push_back(pick(rng));
        out.push_back(p);
    }
    return out;
}

std::string model_path(const Options & o, const RandomModelSpec & s) {
    const std::string p = o.dir + "/" + s.arch + "-" + s.type + "-" + std::to_string(s.layers) + "x" + std::to_string(s.embd) + "-" +
                          std::to_string(s.vocab) + ".gguf";
    FILE * f = std::fopen(p.c_str(), "rb");
    if (f) { std::fclose(f); return p; }
    write_random_model(s, p, 16);
    return p;
}

std::string dequantized_copy(const std::string & src) {
    const std::string dst = src.substr(0, src.size() - 5) + "-dequantized.gguf";
    GgufFile file(src);
    RewriteOptions options;
    for (const auto & t : file.tensors()) {
        if (t.type == GGML_TYPE_F32) continue;
        TensorReplacement r;
        r.name = t.name;
        r.type = GGML_TYPE_F32;
        options.replacements.push_back(r);
    }
    rewrite_gguf(src, dst, options);
    return dst;
}

GraphModelOptions graph_options(const Options & o) {
    GraphModelOptions g;
    g.n_threads = o.threads;
    g.gpu = o.gpu;
    return g;
}

SessionOptions session_options(const Options & o, int n_ctx) {
    SessionOptions s;
    s.n_ctx = n_ctx;
    s.n_threads = o.threads;
    s.n_gpu_layers = o.gpu ? 999 : 0;
    s.repack = false;
    return s;
}

GraphResult graph_logprobs(GraphModel & m, const std::vector<std::vector<int32_t>> & prompts) {
    GraphRequest r;
    r.prompts = prompts;
    r.all_logits = true;
    GraphRun run(m, r, false);
    return run.compute(false);
}

// ---- sections --------------------------------------------------------------------------

double max_abs_diff(const float * a, const float * b, size_t n) {
    double d = 0;
    for (size_t i = 0; i < n; ++i) d = std::max<double>(d, std::fabs(a[i] - b[i]));
    return d;
}

// Per prompt: the own graph alone and in a batch, llama.cpp, and (on a GPU) both against the
// own graph on the CPU in F32, which matches exact float math. GPU matmul kernels differ with
// the batch shape, so "graph vs llama" runs the same shapes; the CPU columns say how far each
// engine's GPU result is from exact math.
void parity(Json & j, const Options & o) {
    j.open("parity", '[');
    for (const std::string arch : {"llama", "qwen2", "qwen3"}) {
        for (const std::string type : {"f32", "q8_0", "q4_k"}) {
            j.open("", '{').str("arch", arch).str("type", type);
            try {
                RandomModelSpec s;
                s.arch = arch;
                s.type = type;
                s.embd = 256, s.ff = 512, s.heads = 4, s.kv_heads = 2, s.layers = 3;
                const std::string path = model_path(o, s);
                const auto prompts = random_prompts({12, 20, 7}, s.vocab, 11);
                GraphModel graph(path, graph_options(o));
                const GraphResult batched = graph_logprobs(graph, prompts);
                std::unique_ptr<GraphModel> cpu;
                if (o.gpu) {
                    Options c = o;
                    c.gpu = false;
                    cpu = std::make_unique<GraphModel>(path, graph_options(c));
                }
                LlamaSession session(path, session_options(o, 128));
                const size_t V = static_cast<size_t>(s.vocab);
                double same_shape = 0, in_batch = 0, graph_cpu = 0, llama_cpu = 0;
                int close = 0, total = 0;
                size_t row = 0;
                for (const auto & p : prompts) {
                    CaptureRequest req;
                    const EvalResult theirs = session.evaluate(p, req);
                    const GraphResult alone = graph_logprobs(graph, {p});
                    const GraphResult exact = cpu ? graph_logprobs(*cpu, {p}) : GraphResult{};
                    for (size_t i = 0; i < p.size(); ++i, ++row) {
                        const double d = max_abs_diff(alone.logprobs.data() + i * V, theirs.logprobs.data() + i * V, V);
                        same_shape = std::max(same_shape, d);
                        close += d <= 1e-3;
                        ++total;
                        in_batch = std::max(in_batch, max_abs_diff(batched.logprobs.data() + row * V, theirs.logprobs.data() + i * V, V));
                        if (cpu) {
                            graph_cpu = std::max(graph_cpu, max_abs_diff(alone.logprobs.data() + i * V, exact.logprobs.data() + i * V, V));
                            llama_cpu = std::max(llama_cpu, max_abs_diff(theirs.logprobs.data() + i * V, exact.logprobs.data() + i * V, V));
                        }
                    }
                }
                j.num("graphVsLlama", same_shape).num("shareWithin1e-3", static_cast<double>(close) / total).num("graphBatchedVsLlama", in_batch);
                if (cpu) j.num("graphVsCpuGraph", graph_cpu).num("llamaVsCpuGraph", llama_cpu);
                j.str("device", graph.device_description());
            } catch (const std::exception & e) {
                j.str("error", e.what());
            }
            j.close('}');
        }
    }
    j.close(']');
}

GraphRequest loss_request(const GraphModel & m, int layer, Site site, const std::vector<float> & delta) {
    GraphRequest r;
    r.prompts = random_prompts({14, 10}, m.hparams().n_vocab, 5);
    r.deltas.push_back({layer, site, {{0, 3}, {1, 2}}, delta});
    for (int pos = 8; pos < 13; ++pos) r.targets.push_back({{0, pos}, r.prompts[0][static_cast<size_t>(pos + 1)], 0.2f});
    for (int pos = 5; pos < 9; ++pos) r.targets.push_back({{1, pos}, r.prompts[1][static_cast<size_t>(pos + 1)], 0.125f});
    ReferenceTerm ref;
    ref.row = {1, 6};
    ref.logprobs.assign(static_cast<size_t>(m.hparams().n_vocab), -std::log(static_cast<float>(m.hparams().n_vocab)));
    ref.weight = 0.5f;
    r.references.push_back(ref);
    return r;
}

double cosine(const std::vector<float> & a, const std::vector<float> & b) {
    double ab = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < a.size(); ++i) { ab += a[i] * b[i]; aa += a[i] * a[i]; bb += b[i] * b[i]; }
    return ab / std::sqrt(aa * bb);
}

double relative_l2(const std::vector<float> & a, const std::vector<float> & b) {
    double d = 0, n = 0;
    for (size_t i = 0; i < a.size(); ++i) { d += (a[i] - b[i]) * (a[i] - b[i]); n += b[i] * b[i]; }
    return std::sqrt(d / n);
}

void gradients(Json & j, const Options & o) {
    j.open("gradients", '{');
    try {
        RandomModelSpec s;
        s.layers = 3;
        const std::string path = model_path(o, s);
        GraphModel m(path, graph_options(o));
        j.open("finiteDifferences", '[');
        for (const Site site : {Site::MlpOut, Site::ResidOut}) {
            for (const int layer : {0, 1}) {
                std::vector<float> delta(static_cast<size_t>(m.hparams().n_embd));
                std::mt19937 rng(static_cast<uint32_t>(layer * 7 + 1));
                std::uniform_real_distribution<float> u(-0.05f, 0.05f);
                for (auto & x : delta) x = u(rng);
                GraphRequest r = loss_request(m, layer, site, delta);
                GraphRun run(m, r, true);
                const std::vector<float> analytic = run.compute(true).gradients[0];
                std::vector<float> numeric(delta.size());
                const float h = 1e-2f;
                for (size_t i = 0; i < delta.size(); ++i) {
                    auto at = [&](float step) {
                        std::vector<float> d = delta;
                        d[i] += step;
                        run.set_delta(0, d);
                        return run.compute(false).loss;
                    };
                    numeric[i] = static_cast<float>((at(h) - at(-h)) / (2 * h));
                }
                j.open("", '{').str("site", site_name(site)).num("layer", layer).num("relativeL2", relative_l2(analytic, numeric))
                    .num("cosine", cosine(analytic, numeric));
                if (o.gpu) {
                    // GPU matmuls round like TF32, too coarse for finite differences: compare
                    // with the CPU gradient, which the CPU finite differences validate.
                    Options c = o;
                    c.gpu = false;
                    GraphModel cpu(path, graph_options(c));
                    const std::vector<float> reference = GraphRun(cpu, r, true).compute(true).gradients[0];
                    j.num("vsCpuGradientRelativeL2", relative_l2(analytic, reference)).num("vsCpuGradientCosine", cosine(analytic, reference));
                }
                j.close('}');
            }
        }
        j.close(']');
        RandomModelSpec q;
        q.type = "q4_k", q.embd = 256, q.ff = 512, q.heads = 4, q.kv_heads = 2, q.layers = 3;
        const std::string qpath = model_path(o, q);
        const std::string dpath = dequantized_copy(qpath);
        std::vector<std::vector<float>> grads;
        Options cpu = o;
        cpu.gpu = false;
        for (const auto & [p, opts] : {std::make_pair(qpath, o), std::make_pair(dpath, cpu)}) {
            GraphModel gm(p, graph_options(opts));
            GraphRun run(gm, loss_request(gm, 1, Site::MlpOut, std::vector<float>(256, 0.01f)), true);
            grads.push_back(run.compute(true).gradients[0]);
        }
        j.num("q4kVsDequantizedCpuCosine", cosine(grads[0], grads[1])).num("q4kVsDequantizedCpuRelativeL2", relative_l2(grads[0], grads[1]));
    } catch (const std::exception & e) {
        j.str("error", e.what());
    }
    j.close('}');
}

void bench_forward(Json & j, const Options & o) {
    j.open("forward", '{');
    try {
        RandomModelSpec s;
        s.type = "q8_0", s.layers = 12, s.embd = 768, s.ff = 2048, s.heads = 12, s.kv_heads = 4, s.vocab = 16000;
        const std::string path = model_path(o, s);
        const auto prompts = random_prompts({128}, s.vocab, 3);
        GraphModel graph(path, graph_options(o));
        SessionOptions as_users_run_it = session_options(o, 512);
        as_users_run_it.repack = true;  // llama.cpp's default (faster) CPU kernels
        LlamaSession session(path, as_users_run_it);
        CaptureRequest req;
        graph_logprobs(graph, prompts);
        session.evaluate(prompts[0], req);
        const double g = median_seconds(5, [&] { graph_logprobs(graph, prompts); });
        const double l = median_seconds(5, [&] { session.evaluate(prompts[0], req); });
        j.num("tokens", 128).num("graphSeconds", g).num("llamaSeconds", l).num("ratio", l / g).str("goal", "ratio >= 0.8").boolean("meetsGoal", l / g >= 0.8);
    } catch (const std::exception & e) {
        j.str("error", e.what());
    }
    j.close('}');
}

// A v*-shaped request: prompts of different lengths, a delta on each prompt's subject token,
// NLL of three target tokens per prompt and one KL row.
GraphRequest vstar_request(const GraphModel & m, int n_prompts, int length, int layer, int from_layer) {
    GraphRequest r;
    std::vector<int> lengths;
    for (int p = 0; p < n_prompts; ++p) lengths.push_back(length - (p % 4));
    r.prompts = random_prompts(lengths, m.hparams().n_vocab, 9);
    r.from_layer = from_layer;
    DeltaSpec d;
    d.layer = layer;
    d.site = Site::MlpOut;
    d.values.assign(static_cast<size_t>(m.hparams().n_embd), 0.0f);
    for (int p = 0; p < n_prompts; ++p) {
        const int n = lengths[static_cast<size_t>(p)];
        d.rows.push_back({p, n - 5});
        for (int t = 0; t < 3; ++t) r.targets.push_back({{p, n - 4 + t}, 500 + t, 1.0f / static_cast<float>(3 * n_prompts)});
    }
    r.deltas.push_back(d);
    ReferenceTerm ref;
    ref.row = {0, lengths[0] - 5};
    ref.logprobs.assign(static_cast<size_t>(m.hparams().n_vocab), -std::log(static_cast<float>(m.hparams().n_vocab)));
    ref.weight = 0.0625f;
    r.references.push_back(ref);
    return r;
}

void bench_backward(Json & j, const Options & o) {
    j.open("backward", '{');
    try {
        RandomModelSpec s;
        s.type = "q4_k", s.layers = 8, s.embd = 1024, s.ff = 2816, s.heads = 16, s.kv_heads = 4, s.vocab = 8192;
        const std::string path = model_path(o, s);
        GraphModel m(path, graph_options(o));
        GraphRun run(m, vstar_request(m, 8, 16, 0, 0), true);
        run.compute(true);
        const double f = median_seconds(3, [&] { run.compute(false); });
        const double b = median_seconds(3, [&] { run.compute(true); });
        j.num("forwardSeconds", f).num("forwardBackwardSeconds", b).num("ratio", b / f).str("goal", "ratio <= 4").boolean("meetsGoal", b / f <= 4);
    } catch (const std::exception & e) {
        j.str("error", e.what());
    }
    j.close('}');
}

void moments_speed(Json & j, const std::string & path, const Options & o, int layer, int n_ctx, int chunks) {
    LlamaSession session(path, session_options(o, n_ctx));
    const int vocab = session.n_vocab();
    std::vector<int32_t> tokens;
    std::mt19937 rng(1);
    std::uniform_int_distribution<int32_t> pick(3, vocab - 1);
    for (int i = 0; i < n_ctx * chunks; ++i) tokens.push_back(i % n_ctx == 0 ? 1 : pick(rng));
    CaptureRequest stop;
    stop.logprobs = false;
    stop.stop_after_layer = layer;
    auto stopped = [&] {
        for (int c = 0; c < chunks; ++c) session.evaluate(std::vector<int32_t>(tokens.begin() + c * n_ctx, tokens.begin() + (c + 1) * n_ctx), stop);
    };
    std::atomic<bool> cancel{false};
    auto moments = [&] {
        MomentsJob job;
        job.tokens = tokens;
        job.layers.push_back({layer, o.dir + "/bench.moments", o.dir + "/bench.moments.checkpoint"});
        job.model_sha256 = job.corpus_sha256 = "bench";
        job.checkpoint_seconds = 1e9;
        compute_second_moments(session, job, cancel, [](const MomentsProgress &) {});
        std::remove((o.dir + "/bench.moments").c_str());
    };
    stopped();
    const double st = median_seconds(3, stopped);
    const double mo = median_seconds(3, moments);
    const double n = static_cast<double>(tokens.size());
    j.num("layer", layer).num("tokens", n).num("momentsTokensPerSecond", n / mo).num("stoppedForwardTokensPerSecond", n / st).num("ratio", st / mo)
        .str("goal", "ratio >= 0.7").boolean("meetsGoal", st / mo >= 0.7);
}

// Second moments from the job (both ways of summing) against a direct double computation
// from keys captured chunk by chunk.
void moments_correctness(Json & j, const Options & o) {
    j.open("momentsCorrectness", '[');
    try {
        RandomModelSpec s;
        s.embd = 256, s.ff = 512, s.heads = 4, s.kv_heads = 2, s.layers = 3;
        const std::string path = model_path(o, s);
        LlamaSession session(path, session_options(o, 64));
        const int n_ctx = 64, chunks = 5, layer = 1, n_ff = s.ff;
        std::vector<int32_t> tokens;
        for (const auto & p : random_prompts(std::vector<int>(chunks, n_ctx), s.vocab, 4)) tokens.insert(tokens.end(), p.begin(), p.end());
        std::vector<double> direct(static_cast<size_t>(n_ff) * n_ff, 0.0);
        for (int c = 0; c < chunks; ++c) {
            CaptureRequest req;
            req.logprobs = false;
            req.key_layers = {layer};
            const auto keys = session.evaluate(std::vector<int32_t>(tokens.begin() + c * n_ctx, tokens.begin() + (c + 1) * n_ctx), req).keys[layer];
            for (int t = 0; t < n_ctx; ++t) {
                const float * k = keys.data() + static_cast<size_t>(t) * n_ff;
                for (int a = 0; a < n_ff; ++a) for (int b = 0; b < n_ff; ++b) direct[static_cast<size_t>(a) * n_ff + b] += static_cast<double>(k[a]) * k[b];
            }
        }
        for (const int device_sums : {-1, 1}) {
            std::atomic<bool> cancel{false};
            MomentsJob job;
            job.tokens = tokens;
            job.layers.push_back({layer, o.dir + "/check.moments", o.dir + "/check.moments.checkpoint"});
            job.model_sha256 = job.corpus_sha256 = "check";
            job.device_sums = device_sums;
            compute_second_moments(session, job, cancel, [](const MomentsProgress &) {});
            std::vector<double> mean;
            read_moments_file(o.dir + "/check.moments", &mean);
            std::remove((o.dir + "/check.moments").c_str());
            double err = 0, scale = 0;
            for (size_t i = 0; i < mean.size(); ++i) {
                const double want = direct[i] / static_cast<double>(tokens.size());
                err = std::max(err, std::fabs(mean[i] - want));
                scale = std::max(scale, std::fabs(want));
            }
            j.open("", '{').str("sums", device_sums == 1 ? "on the device, flushed to double" : "default for this device")
                .num("maxRelativeError", err / scale).close('}');
        }
    } catch (const std::exception & e) {
        j.open("", '{').str("error", e.what()).close('}');
    }
    j.close(']');
}

void bench_moments(Json & j, const Options & o) {
    j.open("moments", '{');
    try {
        RandomModelSpec s;
        s.type = "q8_0", s.layers = 8, s.embd = 512, s.ff = 1408, s.heads = 8, s.kv_heads = 8, s.vocab = 2048;
        moments_speed(j, model_path(o, s), o, 3, 512, 8);
    } catch (const std::exception & e) {
        j.str("error", e.what());
    }
    j.close('}');
}

// Llama-3-8B shape, Q4_K: ROME's 25-step v* (21 prompts × 16 tokens, delta at layer 5) and
// layer-5 second moments, for comparison with PyTorch on the same GPU.
void scale_8b(Json & j, const Options & o) {
    j.open("llama3_8b_shape_q4_k", '{');
    try {
        RandomModelSpec s;
        s.type = "q4_k", s.layers = 32, s.embd = 4096, s.ff = 14336, s.heads = 32, s.kv_heads = 8, s.vocab = 128256, s.context = 8192;
        if (o.big_smoke) s.layers = 8, s.embd = 256, s.ff = 512, s.heads = 4, s.kv_heads = 2, s.vocab = 1000;  // the same code path, CPU-sized
        const double gen = seconds([&] { model_path(o, s); });
        const std::string path = model_path(o, s);
        j.num("generateSeconds", gen);
        GraphModel m(path, graph_options(o));
        const int layer = 5;
        // layers below the delta do not depend on it: one forward gives the residual entering it
        GraphRequest prefix = vstar_request(m, 21, 16, layer, 0);
        prefix.deltas.clear(), prefix.targets.clear(), prefix.references.clear();
        prefix.captures.push_back({layer, Site::ResidIn});
        std::vector<float> states;
        const double t_prefix = seconds([&] {
            GraphRun run(m, prefix, false);
            states = run.compute(false).captures[0].values;
        });
        GraphRequest r = vstar_request(m, 21, 16, layer, layer);
        r.input_states = states;
        double t_build = 0, f = 0, b = 0, opt = 0;
        int steps = 0;
        {
            std::unique_ptr<GraphRun> run;
            t_build = seconds([&] { run = std::make_unique<GraphRun>(m, r, true); });
            run->compute(true);
            f = median_seconds(3, [&] { run->compute(false); });
            b = median_seconds(3, [&] { run->compute(true); });
            AdamOptions adam;
            adam.steps = 25;
            adam.lr = 0.5f;
            opt = seconds([&] { run->optimize(adam, [&](const StepReport &) { ++steps; return true; }); });
        }
        j.num("prefixForwardSeconds", t_prefix).num("buildSeconds", t_build).num("forwardSeconds", f).num("forwardBackwardSeconds", b)
            .num("backwardRatio", b / f).num("vstar25StepsSeconds", opt).num("vstarSteps", steps)
            .num("vstarTotalSeconds", t_prefix + t_build + opt).str("pytorchBf16H100", "2.1 s for 25 steps, fwd+bwd 3.5x fwd");
        j.open("moments", '{');
        moments_speed(j, path, o, layer, 2048, 8);
        j.str("pytorchBf16H100", "136k tokens/s").close('}');
    } catch (const std::exception & e) {
        j.str("error", e.what());
    }
    j.close('}');
}

// One JSON object per line and section, flushed as each finishes, so a run cut short by a
// time limit still reports what it measured.
int suite(const Options & o) {
    auto section = [](const std::function<void(Json &)> & fill) {
        Json j;
        j.open("", '{');
        fill(j);
        j.close('}');
        std::printf("%s\n", j.out.str().c_str());
        std::fflush(stdout);
    };
    const double t0 = now();
    section([&](Json & j) { j.boolean("gpu", o.gpu).num("threads", o.threads); });
    section([&](Json & j) { parity(j, o); });
    section([&](Json & j) { gradients(j, o); });
    section([&](Json & j) { moments_correctness(j, o); });
    section([&](Json & j) { bench_forward(j, o); });
    section([&](Json & j) { bench_backward(j, o); });
    section([&](Json & j) { bench_moments(j, o); });
    if (o.big) section([&](Json & j) { scale_8b(j, o); });
    section([&](Json & j) { j.num("totalSeconds", now() - t0); });
    return 0;
}

}  // namespace

int main(int argc, char ** argv) {
    llama_log_set([](ggml_log_level level, const char * text, void *) { if (level == GGML_LOG_LEVEL_ERROR) std::fputs(text, stderr); }, nullptr);
    try {
        const std::string cmd = argc > 1 ? argv[1] : "";
        auto arg = [&](const std::string & name, const std::string & fallback) {
            for (int i = 2; i + 1 < argc; ++i) if (name == argv[i]) return std::string(argv[i + 1]);
            return fallback;
        };
        auto flag = [&](const std::string & name) {
            for (int i = 2; i < argc; ++i) if (name == argv[i]) return true;
            return false;
        };
        if (cmd == "suite") {
            Options o;
            o.dir = arg("--dir", ".");
            o.gpu = flag("--gpu");
            o.big = flag("--big") || flag("--big-smoke");
            o.big_smoke = flag("--big-smoke");
            o.threads = std::stoi(arg("--threads", "1"));
            return suite(o);
        }
        if (cmd == "gen" && argc > 2) {
            RandomModelSpec s;
            s.arch = arg("--arch", s.arch);
            s.type = arg("--type", s.type);
            s.layers = std::stoi(arg("--layers", "2"));
            s.embd = std::stoi(arg("--embd", "64"));
            s.ff = std::stoi(arg("--ff", "128"));
            s.heads = std::stoi(arg("--heads", "4"));
            s.kv_heads = std::stoi(arg("--kv-heads", "2"));
            s.vocab = std::stoi(arg("--vocab", "320"));
            std::printf("{\"bytes\":%llu}\n", static_cast<unsigned long long>(write_random_model(s, argv[2], 16)));
            return 0;
        }
        std::fprintf(stderr, "usage: graft-check suite --dir DIR [--gpu] [--threads N] [--big]\n"
                             "       graft-check gen OUT --arch A --type T --layers N --embd E --ff F --heads H --kv-heads K --vocab V\n");
        return 2;
    } catch (const std::exception & e) {
        std::fprintf(stderr, "graft-check: error: %s\n", e.what());
        return 1;
    }
}
