#define CATCH_CONFIG_RUNNER
#define CATCH_CONFIG_EXTERNAL_INTERFACES
#include "heirloom/common/crypto.hpp"
#include "support/skip.hpp"

#include <catch2/catch.hpp>
#include <csignal>
#include <iostream>
#include <map>

namespace {

// Counts the test cases that were skipped (HL_SKIP) and says why, at the end of the run: a
// skip is a test that did not run, and must be seen as one.
class SkipSummary : public Catch::TestEventListenerBase {
  public:
    using TestEventListenerBase::TestEventListenerBase;

    bool assertionEnded(const Catch::AssertionStats& stats) override {
        const auto& result = stats.assertionResult;
        std::string message = result.getMessage();
        if (result.getResultType() == Catch::ResultWas::Warning &&
            message.starts_with(heirloom::test::skip_marker))
            reason_ = message.substr(heirloom::test::skip_marker.size());
        return true;
    }

    void testCaseStarting(const Catch::TestCaseInfo& info) override {
        TestEventListenerBase::testCaseStarting(info);
        reason_.clear();
    }

    void testCaseEnded(const Catch::TestCaseStats& stats) override {
        TestEventListenerBase::testCaseEnded(stats);
        if (!reason_.empty())
            skipped_.emplace(stats.testInfo.name, reason_);
        ++cases_;
    }

    void testRunEnded(const Catch::TestRunStats& stats) override {
        TestEventListenerBase::testRunEnded(stats);
        std::cerr << "heirloom_tests: " << skipped_.size() << " of " << cases_
                  << " test cases skipped" << (skipped_.empty() ? "" : ":") << "\n";
        for (const auto& [name, reason] : skipped_)
            std::cerr << "  " << name << ": " << reason << "\n";
    }

  private:
    std::string reason_;
    std::map<std::string, std::string> skipped_;
    std::size_t cases_ = 0;
};

} // namespace

CATCH_REGISTER_LISTENER(SkipSummary)

int main(int argc, char* argv[]) {
    if (!heirloom::crypto::init())
        return 2;
    // A peer that closes a connection the test writes to must fail an assertion (EPIPE), not
    // kill the whole run with SIGPIPE.
    std::signal(SIGPIPE, SIG_IGN);
    return Catch::Session().run(argc, argv);
}
