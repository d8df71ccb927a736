// The only translation unit that includes RE2.
#include "convoy/regex.h"

#include <re2/re2.h>

namespace convoy {

struct Regex::Impl {
  explicit Impl(const std::string& pattern, const RE2::Options& options) : re(pattern, options) {}
  RE2 re;
};

Regex::Regex() = default;
Regex::~Regex() = default;
Regex::Regex(const Regex&) = default;
Regex& Regex::operator=(const Regex&) = default;
Regex::Regex(Regex&&) noexcept = default;
Regex& Regex::operator=(Regex&&) noexcept = default;

Result<Regex> Regex::Compile(const std::string& pattern) {
  RE2::Options options;
  options.set_case_sensitive(false);
  options.set_log_errors(false);
  auto impl = std::make_shared<const Impl>(pattern, options);
  if (!impl->re.ok())
    return Status(Code::kInvalidArgument, "not a valid regular expression: " + impl->re.error());
  Regex out;
  out.impl_ = std::move(impl);
  return out;
}

namespace {

bool SearchFrom(const RE2& re, std::string_view text, size_t from, Regex::Match* m) {
  re2::StringPiece groups[2];
  const int n = re.NumberOfCapturingGroups() >= 1 ? 2 : 1;
  re2::StringPiece input(text.data(), text.size());
  if (!re.Match(input, from, text.size(), RE2::UNANCHORED, groups, n)) return false;
  m->begin = static_cast<size_t>(groups[0].data() - text.data());
  m->end = m->begin + groups[0].size();
  const bool group = n == 2 && groups[1].data() != nullptr;
  m->group_begin = group ? static_cast<size_t>(groups[1].data() - text.data()) : m->begin;
  m->group_end = group ? m->group_begin + groups[1].size() : m->end;
  return true;
}

}  // namespace

bool Regex::Search(std::string_view text, Match* match) const {
  return impl_ && SearchFrom(impl_->re, text, 0, match);
}

std::vector<Regex::Match> Regex::FindAll(std::string_view text) const {
  std::vector<Match> out;
  if (!impl_) return out;
  size_t from = 0;
  Match m;
  while (from <= text.size() && SearchFrom(impl_->re, text, from, &m)) {
    out.push_back(m);
    if (m.end > m.begin) {
      from = m.end;
    } else {  // an empty match: on past it by one whole UTF-8 character
      from = m.end + 1;
      while (from < text.size() && (static_cast<unsigned char>(text[from]) & 0xC0) == 0x80) ++from;
    }
  }
  return out;
}

size_t Regex::Count(std::string_view text) const { return FindAll(text).size(); }

}  // namespace convoy
