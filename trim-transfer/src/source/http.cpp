#include "backends.hpp"
#include "heirloom/common/url.hpp"
#include "multipart.hpp"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <csignal>
#include <cstring>
#include <httplib.h>
#include <limits>
#include <mutex>
#include <openssl/x509.h>
#include <optional>
#include <pthread.h>
#include <thread>

namespace heirloom::trim::detail {

namespace {

using namespace std::chrono_literals;

// Servers cap the ranges of one request (and the Range header length); larger requests are
// split.
constexpr std::size_t max_ranges_per_request = 64;
constexpr int max_attempts = 3;
constexpr std::chrono::milliseconds first_backoff = 200ms;
// Bodies of error answers (404 pages and such) are read and dropped up to this size, so the
// connection can be reused; anything larger ends the connection.
constexpr std::uint64_t max_error_body = 64 * 1024;
// Buffers are never pre-sized beyond this from what a server claims; larger bodies grow as
// their bytes really arrive.
constexpr std::uint64_t max_reserve = 16 << 20;
// Room for multipart framing (delimiter lines and part headers) on top of the data asked for.
constexpr std::uint64_t framing_per_part = 1024;
constexpr std::uint64_t framing_fixed = 4096;
// The read timeout only catches a server that sends nothing at all; one that trickles a byte
// now and then would hold a worker for days. A body must bring at least this many bytes in
// every timeout period (or be complete).
constexpr std::uint64_t min_bytes_per_timeout = 1024;

// Writing to a connection the server has closed raises SIGPIPE, whose default action kills
// the process. The signal is blocked in this thread while a request runs and a pending one is
// consumed afterwards, which leaves the process's signal handling alone.
class SigpipeBlock {
  public:
    SigpipeBlock() {
        sigset_t old;
        sigset_t set = sigpipe_set();
        ::pthread_sigmask(SIG_BLOCK, &set, &old);
        was_blocked_ = ::sigismember(&old, SIGPIPE) == 1;
    }
    ~SigpipeBlock() {
        if (was_blocked_)
            return;
        sigset_t set = sigpipe_set();
        sigset_t pending;
        if (::sigpending(&pending) == 0 && ::sigismember(&pending, SIGPIPE) == 1) {
            timespec zero{};
            while (::sigtimedwait(&set, nullptr, &zero) == SIGPIPE) {
            }
        }
        ::pthread_sigmask(SIG_UNBLOCK, &set, nullptr);
    }
    SigpipeBlock(const SigpipeBlock&) = delete;
    SigpipeBlock& operator=(const SigpipeBlock&) = delete;

  private:
    static sigset_t sigpipe_set() {
        sigset_t set;
        ::sigemptyset(&set);
        ::sigaddset(&set, SIGPIPE);
        return set;
    }
    bool was_blocked_ = false;
};

// Keep-alive connections, one httplib client each. An httplib client runs one request at a
// time, so each worker thread borrows its own and returns it afterwards.
class ClientPool {
  public:
    ClientPool(Url url, SourceOptions options)
        : url_(std::move(url)), options_(std::move(options)) {}

    // A borrowed client, returned to the pool on destruction.
    class Lease {
      public:
        Lease(ClientPool& pool, std::unique_ptr<httplib::ClientImpl> client)
            : pool_(&pool), client_(std::move(client)) {}
        ~Lease() {
            if (client_)
                pool_->give_back(std::move(client_));
        }
        Lease(const Lease&) = delete;
        Lease& operator=(const Lease&) = delete;
        httplib::ClientImpl* operator->() const { return client_.get(); }
        httplib::ClientImpl& operator*() const { return *client_; }

      private:
        ClientPool* pool_;
        std::unique_ptr<httplib::ClientImpl> client_;
    };

    // Waits for an idle client, or makes a new one while fewer than max_connections exist.
    Lease acquire() {
        std::unique_lock lock(mutex_);
        available_.wait(lock, [&] {
            return !idle_.empty() || created_ < std::max(1, options_.max_connections);
        });
        if (!idle_.empty()) {
            auto client = std::move(idle_.back());
            idle_.pop_back();
            return Lease(*this, std::move(client));
        }
        ++created_;
        lock.unlock();
        return Lease(*this, create());
    }

  private:
    void give_back(std::unique_ptr<httplib::ClientImpl> client) {
        {
            std::lock_guard lock(mutex_);
            idle_.push_back(std::move(client));
        }
        available_.notify_one();
    }

    std::unique_ptr<httplib::ClientImpl> create() const {
        std::unique_ptr<httplib::ClientImpl> client;
        if (url_.https) {
            auto ssl = std::make_unique<httplib::SSLClient>(url_.host, url_.port);
            ssl->enable_server_certificate_verification(true);
            if (!options_.ca_file.empty())
                ssl->set_ca_cert_path(options_.ca_file);
            client = std::move(ssl);
        } else {
            client = std::make_unique<httplib::ClientImpl>(url_.host, url_.port);
        }
        const time_t timeout = options_.timeout_seconds;
        client->set_connection_timeout(timeout, 0);
        client->set_read_timeout(timeout, 0);
        client->set_write_timeout(timeout, 0);
        client->set_keep_alive(true);
        client->set_tcp_nodelay(true);
        client->set_follow_location(false);
        if (!options_.bearer_token.empty())
            client->set_bearer_token_auth(options_.bearer_token);
        // Object paths are already safe; the prefix was checked when the URL was parsed.
        client->set_url_encode(false);
        // Ranges are offsets into the stored bytes, so compressed answers are refused (see
        // exchange) rather than decompressed.
        client->set_compress(false);
        client->set_decompress(false);
        return client;
    }

    Url url_;
    SourceOptions options_;
    std::mutex mutex_;
    std::condition_variable available_;
    std::vector<std::unique_ptr<httplib::ClientImpl>> idle_;
    int created_ = 0;
};

// Receives the body of a 2xx answer; one object per attempt.
class BodyHandler {
  public:
    virtual ~BodyHandler() = default;
    // Checks the status and headers of a 2xx answer; an error cancels the request.
    virtual Status on_headers(const httplib::Response& response) = 0;
    // Takes the next piece of the body; false stops the transfer because nothing more is
    // needed, an error cancels it.
    virtual Result<bool> on_data(const char* data, std::size_t size) = 0;
};

// The result of one attempt, and whether trying again might help.
struct Outcome {
    Status status;
    bool transient = false;
};

std::optional<std::uint64_t> content_length(const httplib::Response& response) {
    if (!response.has_header("Content-Length"))
        return std::nullopt;
    return parse_u64(response.get_header_value("Content-Length"));
}

// Reads a whole object, refusing more than max_size bytes.
class WholeBody final : public BodyHandler {
  public:
    explicit WholeBody(std::uint64_t max_size) : max_size_(max_size) {}

    Status on_headers(const httplib::Response& response) override {
        if (response.status != 200)
            return fail(Errc::network, "the server answered " + std::to_string(response.status) +
                                           " " + printable(response.reason) +
                                           " to a plain GET; expected 200 OK");
        auto length = content_length(response);
        if (length && *length > max_size_)
            return too_large(*length);
        if (length)
            body_.reserve(static_cast<std::size_t>(std::min(*length, max_reserve)));
        return {};
    }

    Result<bool> on_data(const char* data, std::size_t size) override {
        if (size > max_size_ - body_.size())
            return too_large(std::nullopt);
        body_.insert(body_.end(), data, data + size);
        return true;
    }

    Bytes take() { return std::move(body_); }

  private:
    std::unexpected<Error> too_large(std::optional<std::uint64_t> size) const {
        std::string what = size ? "is " + std::to_string(*size) + " bytes" : "is larger";
        return fail(Errc::corrupt, "the object " + what + ", more than the limit of " +
                                       std::to_string(max_size_) +
                                       " bytes; the repository is damaged or not a Heirloom "
                                       "repository");
    }

    std::uint64_t max_size_;
    Bytes body_;
};

// A run of bytes [first, end) to fetch: requested ranges after merging those that touch.
struct Span {
    std::uint64_t first = 0;
    std::uint64_t end = 0;
    Bytes data;
    bool done = false;
    std::uint64_t length() const { return end - first; }
};

std::string span_text(const Span& s) {
    return "bytes " + std::to_string(s.first) + "-" + std::to_string(s.end - 1);
}

std::string past_end_message(const Span& s, std::uint64_t size) {
    return span_text(s) + " lie past the end of the object (" + std::to_string(size) +
           " bytes); the object is truncated or the manifest does not match it";
}

// Fetches one batch of spans. Handles the three answers a static server gives to a Range
// request: 206 with one range, 206 multipart/byteranges, and 200 with the whole object. A 200
// answer fills every span still missing, not only this batch's, since the whole object passes
// by anyway.
class RangeBody final : public BodyHandler {
  public:
    RangeBody(std::vector<Span>& spans, std::vector<std::size_t> batch)
        : spans_(spans), batch_(std::move(batch)) {
        batch_first_ = spans_[batch_.front()].first;
        batch_end_ = spans_[batch_.back()].end;
    }

    Status on_headers(const httplib::Response& response) override {
        if (response.status == 200)
            return start_full(response);
        if (response.status != 206)
            return fail(Errc::network, "the server answered " + std::to_string(response.status) +
                                           " " + printable(response.reason) +
                                           " to a Range request; expected 206 or 200");
        auto boundary =
            HL_TRY(multipart::byteranges_boundary(response.get_header_value("Content-Type")));
        if (boundary)
            return start_multipart(response, std::move(*boundary));
        return start_single(response);
    }

    Result<bool> on_data(const char* data, std::size_t size) override {
        if (mode_ == Mode::multipart) {
            if (size > limit_ - buffer_.size())
                return fail(Errc::corrupt, "the multipart answer is larger than the " +
                                               std::to_string(limit_) +
                                               " bytes the requested ranges need");
            buffer_.append(data, size);
            return true;
        }
        return stream(reinterpret_cast<const std::uint8_t*>(data), size);
    }

    // Checks the complete answer and stores the data in the spans.
    Status finish() {
        if (mode_ == Mode::multipart)
            HL_TRY(finish_multipart());
        else if (mode_ == Mode::single && received_ != expected_)
            return fail(Errc::corrupt, "the answer ended after " + std::to_string(received_) +
                                           " of the " + std::to_string(expected_) +
                                           " bytes its Content-Range announced");
        for (std::size_t i = 0; i < targets_.size(); ++i) {
            Span& span = spans_[targets_[i]];
            if (scratch_[i].size() != span.length()) {
                // The body ended before this span: the object is shorter than the span needs.
                if (mode_ == Mode::full)
                    return fail(Errc::corrupt, past_end_message(span, position_));
                return fail(Errc::corrupt, "the answer left out " + span_text(span));
            }
        }
        for (std::size_t i = 0; i < targets_.size(); ++i) {
            spans_[targets_[i]].data = std::move(scratch_[i]);
            spans_[targets_[i]].done = true;
        }
        return {};
    }

  private:
    enum class Mode { full, single, multipart };

    void set_targets(std::vector<std::size_t> targets) {
        targets_ = std::move(targets);
        scratch_.assign(targets_.size(), Bytes());
        next_ = 0;
    }

    Status start_full(const httplib::Response& response) {
        mode_ = Mode::full;
        std::vector<std::size_t> missing;
        for (std::size_t i = 0; i < spans_.size(); ++i)
            if (!spans_[i].done)
                missing.push_back(i);
        set_targets(std::move(missing));
        stop_at_ = spans_[targets_.back()].end;
        if (auto size = content_length(response)) {
            for (std::size_t t : targets_)
                if (spans_[t].end > *size)
                    return fail(Errc::corrupt, past_end_message(spans_[t], *size));
        }
        position_ = 0;
        return {};
    }

    Status start_single(const httplib::Response& response) {
        mode_ = Mode::single;
        if (!response.has_header("Content-Range"))
            return fail(Errc::corrupt,
                        "the server answered 206 Partial Content without a Content-Range header");
        auto range =
            HL_TRY(multipart::parse_content_range(response.get_header_value("Content-Range")));
        HL_TRY(check_within_object(range));
        std::vector<std::size_t> covered = HL_TRY(covered_spans(range));
        if (covered.size() != batch_.size())
            return fail(Errc::corrupt, "the server sent " + range_text(range) + " but " +
                                           batch_text() + " were asked for");
        auto length = content_length(response);
        if (length && *length != range.length())
            return fail(Errc::corrupt, "Content-Length " + std::to_string(*length) +
                                           " does not match Content-Range " + range_text(range));
        set_targets(std::move(covered));
        position_ = range.first;
        expected_ = range.length();
        return {};
    }

    Status start_multipart(const httplib::Response& response, std::string boundary) {
        mode_ = Mode::multipart;
        boundary_ = std::move(boundary);
        limit_ = (batch_end_ - batch_first_) + framing_fixed + framing_per_part * batch_.size();
        auto length = content_length(response);
        if (length && *length > limit_)
            return fail(Errc::corrupt, "the multipart answer announces " + std::to_string(*length) +
                                           " bytes, more than the " + std::to_string(limit_) +
                                           " the requested ranges need");
        buffer_.reserve(static_cast<std::size_t>(std::min(length.value_or(0), max_reserve)));
        return {};
    }

    // Copies the bytes of a body piece into the spans they belong to. Spans are sorted and
    // disjoint, and the body arrives in order, so appending keeps each span's bytes in place.
    Result<bool> stream(const std::uint8_t* data, std::size_t size) {
        if (mode_ == Mode::single && size > expected_ - received_)
            return fail(Errc::corrupt, "the answer has more data than its Content-Range announces");
        received_ += size;
        const std::uint64_t begin = position_;
        const std::uint64_t end = position_ + size;
        position_ = end;
        while (next_ < targets_.size()) {
            Span& span = spans_[targets_[next_]];
            if (span.first >= end)
                break;
            std::uint64_t from = std::max(span.first, begin);
            std::uint64_t to = std::min(span.end, end);
            if (from < to)
                scratch_[next_].insert(scratch_[next_].end(), data + (from - begin),
                                       data + (to - begin));
            if (span.end > end)
                break;
            ++next_;
        }
        // A server ignoring Range sends the whole object; stop once the last span is in.
        if (mode_ == Mode::full && position_ >= stop_at_)
            return false;
        return true;
    }

    Status finish_multipart() {
        auto parts = HL_TRY(multipart::parse_byteranges(buffer_, boundary_));
        std::sort(parts.begin(), parts.end(),
                  [](const auto& a, const auto& b) { return a.range.first < b.range.first; });
        std::vector<std::size_t> targets;
        std::vector<Bytes> scratch;
        for (std::size_t p = 0; p < parts.size(); ++p) {
            const auto& part = parts[p];
            if (p > 0 && part.range.first <= parts[p - 1].range.last)
                return fail(Errc::corrupt, "the multipart answer has overlapping parts " +
                                               range_text(parts[p - 1].range) + " and " +
                                               range_text(part.range));
            HL_TRY(check_within_object(part.range));
            std::vector<std::size_t> covered = HL_TRY(covered_spans(part.range));
            if (covered.empty())
                return fail(Errc::corrupt, "the multipart answer has a part with " +
                                               range_text(part.range) +
                                               ", which was not asked for");
            for (std::size_t s : covered) {
                const Span& span = spans_[s];
                auto start =
                    buffer_.begin() +
                    static_cast<std::ptrdiff_t>(part.data_offset + (span.first - part.range.first));
                targets.push_back(s);
                scratch.emplace_back(start, start + static_cast<std::ptrdiff_t>(span.length()));
            }
        }
        if (targets.size() != batch_.size()) {
            // Name the first span no part covered, and say why when the server told us the
            // object size.
            for (std::size_t s : batch_) {
                if (std::find(targets.begin(), targets.end(), s) != targets.end())
                    continue;
                for (const auto& part : parts)
                    if (part.range.total && spans_[s].end > *part.range.total)
                        return fail(Errc::corrupt, past_end_message(spans_[s], *part.range.total));
                return fail(Errc::corrupt, "the multipart answer left out " + span_text(spans_[s]));
            }
        }
        targets_ = std::move(targets);
        scratch_ = std::move(scratch);
        return {};
    }

    // When the server states the object size, a span reaching past it explains a missing
    // range better than anything else.
    Status check_within_object(const multipart::ContentRange& range) const {
        if (!range.total)
            return {};
        for (std::size_t s : batch_)
            if (spans_[s].end > *range.total)
                return fail(Errc::corrupt, past_end_message(spans_[s], *range.total));
        return {};
    }

    // The batch spans lying wholly inside an answered range; the range itself must stay
    // within what was asked for.
    Result<std::vector<std::size_t>> covered_spans(const multipart::ContentRange& range) const {
        if (range.first < batch_first_ || range.last >= batch_end_)
            return fail(Errc::corrupt, "the server sent " + range_text(range) + " but " +
                                           batch_text() + " were asked for");
        std::vector<std::size_t> covered;
        for (std::size_t s : batch_)
            if (spans_[s].first >= range.first && spans_[s].end - 1 <= range.last)
                covered.push_back(s);
        return covered;
    }

    static std::string range_text(const multipart::ContentRange& r) {
        return "bytes " + std::to_string(r.first) + "-" + std::to_string(r.last);
    }

    std::string batch_text() const {
        std::string text = span_text(spans_[batch_.front()]);
        if (batch_.size() > 1)
            text += " and " + std::to_string(batch_.size() - 1) + " more ranges up to byte " +
                    std::to_string(batch_end_ - 1);
        return text;
    }

    std::vector<Span>& spans_;
    std::vector<std::size_t> batch_;
    std::uint64_t batch_first_ = 0;
    std::uint64_t batch_end_ = 0;
    Mode mode_ = Mode::full;

    // Streaming (full and single): the object offset of the next body byte, and where each
    // target span's bytes collect until the answer is complete.
    std::vector<std::size_t> targets_;
    std::vector<Bytes> scratch_;
    std::size_t next_ = 0;
    std::uint64_t position_ = 0;
    std::uint64_t stop_at_ = 0;
    std::uint64_t expected_ = 0;
    std::uint64_t received_ = 0;

    // Multipart: the whole body, bounded by limit_, parsed when complete.
    std::string boundary_;
    std::string buffer_;
    std::uint64_t limit_ = 0;
};

// Holds the bodies of all requests together to max_bytes_per_second (0: no limit), sleeping
// in the receiving thread when they run ahead.
class RateLimiter {
  public:
    explicit RateLimiter(std::uint64_t bytes_per_second) : rate_(bytes_per_second) {}

    void take(std::size_t bytes) {
        if (rate_ == 0)
            return;
        std::chrono::steady_clock::time_point until;
        {
            std::lock_guard lock(mutex_);
            auto now = std::chrono::steady_clock::now();
            // At most a quarter second of unused allowance carries over (a small burst).
            next_ = std::max(next_, now - std::chrono::milliseconds(250));
            next_ += std::chrono::nanoseconds(bytes * 1'000'000'000ull / rate_);
            until = next_;
        }
        std::this_thread::sleep_until(until);
    }

  private:
    std::uint64_t rate_;
    std::mutex mutex_;
    std::chrono::steady_clock::time_point next_{};
};

class HttpSource final : public ObjectSource {
  public:
    HttpSource(Url url, SourceOptions options)
        : url_(std::move(url)), options_(std::move(options)), pool_(url_, options_),
          limiter_(options_.max_bytes_per_second) {}

    std::string describe() const override { return url_.display; }

    Result<Bytes> get(std::string_view path, std::uint64_t max_size) override {
        HL_TRY(check_path(path));
        const std::string what = "GET " + url_.display + "/" + std::string(path);
        Bytes body;
        HL_TRY(with_retries([&]() -> Outcome {
            WholeBody handler(max_size);
            Outcome outcome = exchange(what, path, {}, handler);
            if (outcome.status)
                body = handler.take();
            return outcome;
        }));
        return body;
    }

    Result<std::vector<Bytes>> get_ranges(std::string_view path,
                                          std::span<const ByteRange> ranges) override {
        HL_TRY(check_path(path));
        const std::string what = "GET " + url_.display + "/" + std::string(path);

        // Merges ranges that overlap or touch, in offset order: fewer, larger ranges make
        // smaller requests and answers, and keep servers from refusing overlapping ranges.
        std::vector<std::size_t> order;
        for (std::size_t i = 0; i < ranges.size(); ++i) {
            if (ranges[i].length == 0)
                continue;
            if (ranges[i].offset > std::numeric_limits<std::uint64_t>::max() - ranges[i].length)
                return fail(Errc::invalid_argument,
                            what + ": range " + std::to_string(ranges[i].offset) + "+" +
                                std::to_string(ranges[i].length) + " overflows");
            order.push_back(i);
        }
        std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
            return ranges[a].offset < ranges[b].offset;
        });
        std::vector<Span> spans;
        for (std::size_t i : order) {
            const ByteRange& r = ranges[i];
            if (!spans.empty() && r.offset <= spans.back().end) {
                spans.back().end = std::max(spans.back().end, r.offset + r.length);
                continue;
            }
            spans.push_back(Span{r.offset, r.offset + r.length, {}, false});
        }

        for (std::size_t begin = 0; begin < spans.size(); begin += max_ranges_per_request) {
            std::size_t end = std::min(spans.size(), begin + max_ranges_per_request);
            std::vector<std::size_t> batch;
            for (std::size_t s = begin; s < end; ++s)
                if (!spans[s].done)
                    batch.push_back(s);
            if (batch.empty())
                continue;
            httplib::Headers headers{{"Range", range_header(spans, batch)}};
            HL_TRY(with_retries([&]() -> Outcome {
                RangeBody handler(spans, batch);
                Outcome outcome = exchange(what, path, headers, handler);
                if (!outcome.status)
                    return outcome;
                if (Status ok = handler.finish(); !ok)
                    return {std::unexpected(std::move(ok).error().context(what)), false};
                return outcome;
            }));
        }

        std::vector<Bytes> out;
        out.reserve(ranges.size());
        for (const ByteRange& r : ranges) {
            if (r.length == 0) {
                out.emplace_back();
                continue;
            }
            auto it = std::upper_bound(
                spans.begin(), spans.end(), r.offset,
                [](std::uint64_t offset, const Span& s) { return offset < s.first; });
            const Span& span = *std::prev(it);
            auto start = span.data.begin() + static_cast<std::ptrdiff_t>(r.offset - span.first);
            out.emplace_back(start, start + static_cast<std::ptrdiff_t>(r.length));
        }
        return out;
    }

    TransferStats stats() const override { return {bytes_.load(), requests_.load()}; }

  private:
    Status check_path(std::string_view path) const {
        if (!valid_object_path(path))
            return fail(Errc::invalid_argument,
                        "invalid object path \"" + printable(path) + "\" for " + url_.display);
        return {};
    }

    static std::string range_header(const std::vector<Span>& spans,
                                    const std::vector<std::size_t>& batch) {
        std::string value = "bytes=";
        for (std::size_t s : batch) {
            if (value.size() > 6)
                value += ',';
            value += std::to_string(spans[s].first) + "-" + std::to_string(spans[s].end - 1);
        }
        return value;
    }

    // Runs an attempt until it succeeds, fails for good, or the retries or the time budget
    // (one timeout) run out. Short backoffs ride out restarts and stale keep-alive connections;
    // an attempt that already waited a full timeout is not repeated.
    template <class Attempt> Status with_retries(Attempt&& attempt) {
        const auto start = std::chrono::steady_clock::now();
        const auto budget = std::chrono::seconds(options_.timeout_seconds);
        auto backoff = first_backoff;
        for (int n = 1;; ++n) {
            Outcome outcome = attempt();
            bool again = !outcome.status && outcome.transient && n < max_attempts &&
                         std::chrono::steady_clock::now() - start + backoff < budget;
            if (!again) {
                if (!outcome.status && n > 1)
                    outcome.status.error().message += " (tried " + std::to_string(n) + " times)";
                return outcome.status;
            }
            std::this_thread::sleep_for(backoff);
            backoff *= 3;
        }
    }

    // One GET request: checks the answer's status, streams a 2xx body into the handler, and
    // turns every failure into an error that says what happened and what to do.
    Outcome exchange(const std::string& what, std::string_view path, const httplib::Headers& extra,
                     BodyHandler& handler) {
        const std::string target = url_.prefix + "/" + std::string(path);
        httplib::Headers headers = extra;
        // Compressed bodies cannot be sliced by byte offset; ask for the bytes as stored.
        headers.emplace("Accept-Encoding", "identity");
        headers.emplace("User-Agent", "heirloom");

        std::optional<Error> stopped; // why a callback cancelled the transfer
        bool finished_early = false;
        bool accepted = false;
        int status = 0;
        std::string reason;
        std::string location;
        std::uint64_t dropped = 0;

        // Body progress since the last check, for min_bytes_per_timeout.
        auto window_start = std::chrono::steady_clock::now();
        std::uint64_t window_bytes = 0;
        std::uint64_t body_bytes = 0;
        std::optional<std::uint64_t> body_length;
        httplib::ResponseHandler on_response = [&](const httplib::Response& response) {
            status = response.status;
            reason = printable(response.reason);
            window_start = std::chrono::steady_clock::now();
            body_length = content_length(response);
            if (status < 200 || status >= 300) {
                location = printable(response.get_header_value("Location"));
                return true;
            }
            std::string encoding = response.get_header_value("Content-Encoding");
            if (!encoding.empty() && !iequals(encoding, "identity")) {
                stopped = Error{Errc::network,
                                "the server sent the object compressed (Content-Encoding \"" +
                                    printable(encoding) +
                                    "\") although it was asked not to; turn off compression "
                                    "for the repository on the server"};
                return false;
            }
            if (Status ok = handler.on_headers(response); !ok) {
                stopped = std::move(ok).error();
                return false;
            }
            accepted = true;
            return true;
        };
        httplib::ContentReceiver on_body = [&](const char* data, std::size_t size) {
            limiter_.take(size);
            bytes_ += size;
            body_bytes += size;
            window_bytes += size;
            const auto now = std::chrono::steady_clock::now();
            if (now - window_start >= std::chrono::seconds(options_.timeout_seconds)) {
                const bool complete = body_length && body_bytes >= *body_length;
                if (window_bytes < min_bytes_per_timeout && !complete) {
                    stopped = Error{Errc::network, "the server is sending too slowly (" +
                                                       std::to_string(window_bytes) + " bytes in " +
                                                       std::to_string(options_.timeout_seconds) +
                                                       " s); check the server and the network"};
                    return false;
                }
                window_start = now;
                window_bytes = 0;
            }
            if (!accepted) {
                dropped += size;
                return dropped <= max_error_body;
            }
            auto more = handler.on_data(data, size);
            if (!more) {
                stopped = std::move(more).error();
                return false;
            }
            if (!*more)
                finished_early = true;
            return *more;
        };

        ++requests_;
        httplib::Error error = httplib::Error::Success;
        long verify_result = X509_V_OK;
        bool answered = false;
        {
            SigpipeBlock sigpipe;
            auto client = pool_.acquire();
            httplib::Result result = client->Get(target, headers, on_response, on_body);
            answered = static_cast<bool>(result);
            error = result.error();
            // The response handler does not run for answers without a body (204), so the
            // status comes from the result.
            if (answered) {
                status = result->status;
                reason = printable(result->reason);
            }
            if (error == httplib::Error::SSLServerVerification) {
                if (auto* ssl = dynamic_cast<httplib::SSLClient*>(&*client))
                    verify_result = ssl->get_openssl_verify_result();
            }
        }

        if (stopped)
            return {std::unexpected(std::move(*stopped).context(what)), false};
        if (status != 0 && (status < 200 || status >= 300))
            return status_error(what, status, reason, location);
        if (!answered && !finished_early)
            return transport_error(what, error, verify_result);
        if (!accepted)
            return {fail(Errc::network, what + ": the server answered " + std::to_string(status) +
                                            " " + reason + " without the object"),
                    false};
        return {};
    }

    Outcome status_error(const std::string& what, int status, const std::string& reason,
                         const std::string& location) const {
        const std::string answer =
            "the server answered " + std::to_string(status) + (reason.empty() ? "" : " " + reason);
        if (status == 404 || status == 410)
            return {
                fail(Errc::not_found, what + ": the object is not on the server (" + answer + ")"),
                false};
        if (status == 416)
            return {fail(Errc::corrupt, what + ": " + answer +
                                            ": the ranges lie past the end of the object; the "
                                            "object is truncated or the manifest does not match "
                                            "it"),
                    false};
        if (status >= 500)
            return {fail(Errc::network, what + ": " + answer + "; try again later"), true};
        if (status >= 300 && status < 400)
            return {fail(Errc::network, what + ": " + answer + " redirecting to \"" + location +
                                            "\"; use the final URL as the image source"),
                    false};
        if (status == 401 || status == 403)
            return {fail(Errc::network, what + ": " + answer +
                                            "; the server does not allow reading the "
                                            "repository, check its access settings"),
                    false};
        return {fail(Errc::network, what + ": " + answer), false};
    }

    Outcome transport_error(const std::string& what, httplib::Error error,
                            long verify_result) const {
        const std::string server = url_.host + ":" + std::to_string(url_.port);
        const std::string timeout = std::to_string(options_.timeout_seconds) + " s";
        switch (error) {
        case httplib::Error::Connection:
            return {fail(Errc::network, what + ": cannot connect to " + server +
                                            "; check the URL and that the server is running"),
                    true};
        case httplib::Error::ConnectionTimeout:
            return {fail(Errc::network, what + ": connecting to " + server + " took longer than " +
                                            timeout + "; check the network and the server"),
                    true};
        case httplib::Error::Read:
            return {fail(Errc::network, what + ": no complete answer from " + server +
                                            " (connection lost, or nothing received for " +
                                            timeout + "); try again later"),
                    true};
        case httplib::Error::Write:
            return {fail(Errc::network, what + ": the connection to " + server +
                                            " broke while sending the request; try again later"),
                    true};
        case httplib::Error::SSLConnection:
            return {fail(Errc::network, what + ": the TLS handshake with " + server +
                                            " failed; check that the server speaks HTTPS on "
                                            "that port"),
                    false};
        case httplib::Error::SSLServerVerification: {
            std::string why = verify_result != X509_V_OK
                                  ? X509_verify_cert_error_string(verify_result)
                                  : "the certificate is not for " + url_.host;
            return {fail(Errc::network,
                         what + ": the server's TLS certificate was rejected (" + why +
                             "); install the CA that issued it or give the source a CA file"),
                    false};
        }
        case httplib::Error::SSLLoadingCerts:
            return {
                fail(Errc::network, what + ": cannot load the trusted CA certificates from " +
                                        (options_.ca_file.empty() ? std::string("the system store")
                                                                  : options_.ca_file)),
                false};
        default:
            return {fail(Errc::network,
                         what + ": the request failed (" + httplib::to_string(error) + ")"),
                    true};
        }
    }

    Url url_;
    SourceOptions options_;
    ClientPool pool_;
    RateLimiter limiter_;
    std::atomic<std::uint64_t> bytes_{0};
    std::atomic<std::uint64_t> requests_{0};
};

} // namespace

Result<std::unique_ptr<ObjectSource>> make_http_source(std::string_view url,
                                                       const SourceOptions& options) {
    Url parsed = HL_TRY(parse_url(url));
    if (parsed.https && !options.ca_file.empty()) {
        std::error_code ec;
        if (!fs::is_regular_file(options.ca_file, ec))
            return fail(Errc::not_found, "CA file " + options.ca_file + " for " + parsed.display +
                                             " does not exist or is not a file");
    }
    return std::unique_ptr<ObjectSource>(std::make_unique<HttpSource>(std::move(parsed), options));
}

} // namespace heirloom::trim::detail
