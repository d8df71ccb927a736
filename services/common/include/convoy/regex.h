#pragma once
// Regular expressions over user text, in linear time: RE2 (no backtracking, so no pattern has a
// super-linear case an adversarial text could hit, and no recursion a long text could overflow).
// regex.cpp is the only translation unit that includes RE2. The syntax is RE2's: Perl's without
// backreferences or lookaround (a flow that needs "but not these words" says so with stop_words).
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "convoy/status.h"

namespace convoy {

class Regex {
 public:
  // Case-insensitive, UTF-8. kInvalidArgument names what is wrong with the pattern.
  static Result<Regex> Compile(const std::string& pattern);
  Regex();
  ~Regex();
  Regex(const Regex&);
  Regex& operator=(const Regex&);
  Regex(Regex&&) noexcept;
  Regex& operator=(Regex&&) noexcept;

  struct Match {
    size_t begin = 0, end = 0;  // the whole match, [begin, end) in the text
    size_t group_begin = 0,
           group_end = 0;  // group 1 when the pattern has one and it took part; else the match
  };
  // The leftmost match (Perl's choice among alternatives), if any.
  bool Search(std::string_view text, Match* match) const;
  // Every match, left to right, not overlapping (an empty match moves on by one byte).
  std::vector<Match> FindAll(std::string_view text) const;
  // How many matches FindAll would return.
  size_t Count(std::string_view text) const;

 private:
  struct Impl;
  std::shared_ptr<const Impl>
      impl_;  // compiled once, shared by copies of the flow or guard that hold it
};

}  // namespace convoy
