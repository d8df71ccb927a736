#pragma once
// The content guard: the last check of a message's text before the Graph API. The lead flow must
// never send a list of services (docs/design.md: "How can I help you today?"), whatever a
// flow file, a template or a future AI step writes. Deny rules (deploy/guard/content-guard.json,
// proto-schemas/content_guard.v1.json) find such lists; what they find is cut out, and when nothing
// is left the configured fallback goes instead. Each time is logged and counted by the caller.
#include <memory>
#include <string>
#include <vector>

#include "convoy/json.h"
#include "convoy/regex.h"
#include "convoy/status.h"

namespace convoy::outbound {

struct GuardOutcome {
  bool changed = false;
  bool replaced = false;           // nothing was left: the fallback went instead
  std::string text;                // what goes
  std::vector<std::string> rules;  // the rules that matched, by name
};

class ContentGuard {
 public:
  // From the file's JSON text; `origin` names it in errors (a bad pattern, an unknown schema).
  static Result<std::shared_ptr<const ContentGuard>> Parse(const std::string& json,
                                                           const std::string& origin,
                                                           const SchemaRegistry& schemas);
  static Result<std::shared_ptr<const ContentGuard>> Load(const std::string& path,
                                                          const SchemaRegistry& schemas);

  GuardOutcome Check(const std::string& text) const;
  // An outbound.send body with its text (text.body, interactive.body.text) checked; *outcome says
  // what changed. The body unchanged when nothing matched.
  std::string CheckCommand(const std::string& body, GuardOutcome* outcome) const;
  size_t rules() const { return rules_.size(); }

 private:
  struct Rule {
    std::string name;
    Regex pattern;
    int min_services = 1;
  };
  std::vector<Rule> rules_;
  Regex service_;  // any one service term
  bool has_services_ = false;
  // The cheap look first: the service terms in lower case with their white space folded, and the
  // fewest a rule needs to match (0: some rule needs none, so every text goes through the rules).
  std::vector<std::string> terms_;
  int fewest_ = 0;
  std::string fallback_;
};

}  // namespace convoy::outbound
