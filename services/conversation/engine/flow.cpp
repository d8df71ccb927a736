#include "engine/flow.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cctype>
#include <set>

#include "convoy/rapidjson_util.h"

namespace convoy::conversation {

namespace {

std::string Trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

bool IsWordChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

Validation ParseValidation(const std::string& v) {
  if (v == "nonempty") return Validation::kNonEmpty;
  if (v == "email") return Validation::kEmail;
  if (v == "price") return Validation::kPrice;
  if (v == "name") return Validation::kName;
  if (v == "words") return Validation::kWords;
  return Validation::kNone;
}

std::vector<std::string> Strings(const rapidjson::Value& v, bool upper) {
  std::vector<std::string> out;
  if (!v.IsArray()) return out;
  for (const auto& s : v.GetArray()) {
    if (s.IsString()) out.push_back(upper ? NormalizeKeyword(s.GetString()) : s.GetString());
  }
  return out;
}

Status ParseRules(const rapidjson::Value& v, const std::string& where, ExtractRule* rule);

Status ParseExtract(const rapidjson::Value& v, const std::string& where, ExtractRule* rule) {
  rule->field = JsonStr(v, "field");
  rule->label = JsonStr(v, "label");
  rule->prompt = JsonStr(v, "prompt");
  rule->invalid = JsonStr(v, "invalid");
  rule->validate = ParseValidation(JsonStr(v, "validate"));
  rule->rest = JsonMember(v, "rest").IsTrue();
  return ParseRules(v, where, rule);
}

// A rule's patterns and keywords (an extract rule's, or a step's own).
Status ParseRules(const rapidjson::Value& v, const std::string& where, ExtractRule* rule) {
  const auto& patterns = JsonMember(v, "patterns");
  if (patterns.IsArray()) {
    for (rapidjson::SizeType i = 0; i < patterns.Size(); ++i) {
      auto compiled = Regex::Compile(patterns[i].GetString());
      if (!compiled.ok()) {
        return Status(Code::kInvalidArgument, where + "/patterns/" + std::to_string(i) + ": " +
                                                  compiled.status().message());
      }
      rule->patterns.push_back(std::move(*compiled));
    }
  }
  const auto& stop_words = JsonMember(v, "stop_words");
  if (stop_words.IsArray()) {
    for (const auto& w : stop_words.GetArray()) rule->stop_words.push_back(Lower(w.GetString()));
  }
  const auto& keywords = JsonMember(v, "keywords");
  if (keywords.IsObject()) {
    for (const auto& m : keywords.GetObject())
      rule->keywords.emplace_back(Lower(m.name.GetString()), m.value.GetString());
    std::stable_sort(rule->keywords.begin(), rule->keywords.end(),
                     [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
  }
  return Status::Ok();
}

// What the schema cannot check: references, per-kind members, duplicates.
Status CheckFlow(const Flow& f, const std::string& origin) {
  std::set<std::string> ids, fields;
  for (size_t i = 0; i < f.steps.size(); ++i) {
    const Step& s = f.steps[i];
    std::string where = origin + ": /steps/" + std::to_string(i) + " (" + s.id + ")";
    if (!ids.insert(s.id).second)
      return Status(Code::kInvalidArgument, where + ": step id used twice");
    auto need = [&](bool ok, const char* what) {
      return ok ? Status::Ok() : Status(Code::kInvalidArgument, where + ": a " + what);
    };
    Status st;
    switch (s.kind) {
      case Step::Kind::kAskText:
        st = need(!s.field.empty() && !s.next.empty(), "ask_text step needs `field` and `next`");
        break;
      case Step::Kind::kCollectPhotos:
        st = need(!s.field.empty() && !s.next.empty() && !s.done_keyword.empty() &&
                      !s.first_ack.empty() && !s.empty.empty() && !s.expired.empty() &&
                      !s.late.empty(),
                  "collect_photos step needs `field`, `next`, `done_keyword`, `first_ack`, "
                  "`empty`, `expired`, `late`");
        break;
      case Step::Kind::kButtons:
      case Step::Kind::kSummary:
        st = need(!s.buttons.empty(), "buttons or summary step needs `buttons`");
        if (st.ok() && s.kind == Step::Kind::kSummary)
          st = need(!s.summary.empty(), "summary step needs `summary`");
        break;
      case Step::Kind::kChecklist:
        st = need(f.assigned && !s.next.empty() && !s.prompt.empty() && !s.photo_required.empty() &&
                      !s.photo_pending.empty() && !s.invalid.empty(),
                  "checklist step (in a flow with `assignment`) needs `prompt`, `photo_required`, "
                  "`photo_pending`, "
                  "`invalid` and `next`");
        break;
      case Step::Kind::kConfirm:
        st = need(!s.next.empty() && !s.prompt.empty() && !s.confirm_keyword.empty() &&
                      !s.invalid.empty(),
                  "confirm step needs `prompt`, `confirm_keyword`, `invalid` and `next`");
        break;
      case Step::Kind::kDetect:
        st = need(
            !s.field.empty() && !s.next.empty() && !s.handoff.empty() && !s.invalid.empty() &&
                s.own.HasRules(),
            "detect step needs `field`, `patterns` or `keywords`, `invalid`, `next` and `handoff`");
        break;
      case Step::Kind::kComplete:
        st = need(s.next.empty(), "complete step ends the flow: no `next`");
        if (st.ok())
          st = need(s.sink.empty() || s.deliver,
                    "a complete step with a `sink` delivers: `deliver` must be true");
        if (st.ok() && s.hands_off)
          st = need(!s.sink.empty(), "a handoff step names the `sink` its conversation goes to");
        break;
    }
    if (st.ok() && s.accepts != std::vector<std::string>{"image"}) {
      st = need(
          s.kind == Step::Kind::kCollectPhotos || s.kind == Step::Kind::kChecklist,
          "step that takes no media has no `accepts` (only collect_photos and checklist steps do)");
    }
    if (!st.ok()) return st;
    for (const auto& field : {s.field}) {
      if (!field.empty() && !fields.insert(field).second) {
        return Status(Code::kInvalidArgument,
                      where + ": field '" + field + "' is set by two steps");
      }
    }
    for (const auto& r : s.extract) {
      if (!r.rest && !r.HasRules()) {
        return Status(Code::kInvalidArgument,
                      where + ": extract '" + r.field + "' needs patterns, keywords or `rest`");
      }
      if (r.rest && (s.kind != Step::Kind::kAskText || !s.own.HasRules())) {
        return Status(Code::kInvalidArgument,
                      where + ": extract '" + r.field +
                          "' takes the rest of an answer: the step needs its own patterns");
      }
      if (!fields.insert(r.field).second) {
        return Status(Code::kInvalidArgument,
                      where + ": field '" + r.field + "' is set by two steps");
      }
    }
    std::set<std::string> button_ids;
    for (const auto& b : s.buttons) {
      if (!button_ids.insert(b.id).second)
        return Status(Code::kInvalidArgument, where + ": button id '" + b.id + "' used twice");
    }
  }
  if (!ids.count(f.start))
    return Status(Code::kInvalidArgument, origin + ": /start: no step '" + f.start + "'");
  for (size_t i = 0; i < f.steps.size(); ++i) {
    const Step& s = f.steps[i];
    std::string where = origin + ": /steps/" + std::to_string(i) + " (" + s.id + ")";
    if (!s.next.empty() && !ids.count(s.next))
      return Status(Code::kInvalidArgument, where + "/next: no step '" + s.next + "'");
    if (!s.handoff.empty() && !ids.count(s.handoff)) {
      return Status(Code::kInvalidArgument, where + "/handoff: no step '" + s.handoff + "'");
    }
    for (size_t b = 0; b < s.buttons.size(); ++b) {
      if (!ids.count(s.buttons[b].next)) {
        return Status(Code::kInvalidArgument, where + "/buttons/" + std::to_string(b) +
                                                  "/next: no step '" + s.buttons[b].next + "'");
      }
    }
    for (const auto& field : s.summary) {
      if (!fields.count(field))
        return Status(Code::kInvalidArgument,
                      where + "/summary: no step sets field '" + field + "'");
    }
  }
  return Status::Ok();
}

}  // namespace

std::string Lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string NormalizeKeyword(const std::string& text) {
  std::string out;
  bool space = false;
  for (char c : Trim(text)) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      space = true;
      continue;
    }
    if (space && !out.empty()) out += ' ';
    space = false;
    out += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return out;
}

bool Validate(Validation v, const std::string& text, std::string* normalized) {
  std::string t = Trim(text);
  *normalized = t;
  switch (v) {
    case Validation::kNone:
      return true;
    case Validation::kNonEmpty:
      return !t.empty();
    case Validation::kEmail: {
      // local@domain.tld: one @, no spaces, a dot in the domain with characters around it.
      auto at = t.find('@');
      if (t.empty() || t.size() > 254 || at == 0 || at == std::string::npos ||
          t.find('@', at + 1) != std::string::npos)
        return false;
      if (std::any_of(t.begin(), t.end(),
                      [](unsigned char c) { return std::isspace(c) || c < 0x21; }))
        return false;
      std::string domain = t.substr(at + 1);
      auto dot = domain.rfind('.');
      if (dot == std::string::npos || dot == 0 || dot + 3 > domain.size())
        return false;  // a TLD of 2+ letters
      if (domain.find("..") != std::string::npos) return false;
      *normalized = t.substr(0, at + 1) + Lower(domain);
      return true;
    }
    case Validation::kName:
    case Validation::kWords: {
      // Letters (any script: bytes of multi-byte UTF-8 characters count), spaces and . ' -.
      const size_t max = v == Validation::kName ? 80 : 60;
      if (t.size() < 2 || t.size() > max) return false;
      size_t letters = 0;
      for (unsigned char c : t) {
        if (std::isalpha(c) || c >= 0x80) {
          ++letters;
        } else if (!(c == ' ' || c == '.' || c == '\'' || c == '-')) {
          return false;
        }
      }
      if (letters < 2) return false;
      // Inner white space folded; a name's words capitalised when typed all in lower case.
      std::string folded;
      for (char c : t) {
        if (std::isspace(static_cast<unsigned char>(c))) {
          if (!folded.empty() && folded.back() != ' ') folded += ' ';
        } else {
          folded += c;
        }
      }
      if (v == Validation::kName && Lower(folded) == folded) {
        for (size_t i = 0; i < folded.size(); ++i) {
          if (i == 0 || folded[i - 1] == ' ' || folded[i - 1] == '-') {
            folded[i] = static_cast<char>(std::toupper(static_cast<unsigned char>(folded[i])));
          }
        }
      }
      *normalized = folded;
      return true;
    }
    case Validation::kPrice: {
      // 25, 25.5, 25,50, $25, 25 USD: digits with an optional 1-2 digit fraction.
      std::string digits;
      size_t i = 0;
      while (i < t.size() && !std::isdigit(static_cast<unsigned char>(t[i]))) ++i;
      if (i == t.size()) return false;
      std::string prefix = Lower(Trim(t.substr(0, i)));
      if (!prefix.empty() && prefix != "$" && prefix != "usd" && prefix != "eur" &&
          prefix != "gbp" && prefix != "\xe2\x82\xac" && prefix != "\xc2\xa3" &&
          prefix != "price" && prefix != "price:")
        return false;
      size_t start = i;
      while (i < t.size() && std::isdigit(static_cast<unsigned char>(t[i]))) ++i;
      std::string whole = t.substr(start, i - start), frac;
      if (i < t.size() && (t[i] == '.' || t[i] == ',')) {
        size_t f = ++i;
        while (i < t.size() && std::isdigit(static_cast<unsigned char>(t[i]))) ++i;
        frac = t.substr(f, i - f);
        if (frac.empty() || frac.size() > 2) return false;
      }
      std::string suffix = Lower(Trim(t.substr(i)));
      if (!suffix.empty() && suffix != "$" && suffix != "usd" && suffix != "eur" &&
          suffix != "gbp" && suffix != "\xe2\x82\xac" && suffix != "\xc2\xa3" &&
          suffix != "dollars" && suffix != "euros")
        return false;
      if (whole.size() > 7) return false;
      while (whole.size() > 1 && whole[0] == '0') whole.erase(0, 1);
      if (frac.size() == 1) frac += '0';
      *normalized = frac.empty() ? whole : whole + "." + frac;
      return true;
    }
  }
  return false;
}

namespace {

// Where a value found in text[begin, end) ends: before the first of its words that is a stop word
// (the word itself, or the word followed by a character that is not a letter, a digit or '_', as a
// word boundary would have it); `end` when none is.
size_t CutAtStopWord(const std::string& text, size_t begin, size_t end,
                     const std::vector<std::string>& stop_words) {
  if (stop_words.empty()) return end;
  const std::string lower = Lower(text.substr(0, end));
  for (size_t i = begin; i < end;) {
    while (i < end && std::isspace(static_cast<unsigned char>(lower[i]))) ++i;
    size_t word_end = i;
    while (word_end < end && !std::isspace(static_cast<unsigned char>(lower[word_end]))) ++word_end;
    if (i == word_end) break;
    for (const auto& stop : stop_words) {
      if (lower.compare(i, stop.size(), stop) != 0 || i + stop.size() > word_end) continue;
      const size_t after = i + stop.size();
      if (after == word_end || !IsWordChar(lower[after])) {
        size_t cut = i;
        while (cut > begin && std::isspace(static_cast<unsigned char>(text[cut - 1]))) --cut;
        return cut;
      }
    }
    i = word_end;
  }
  return end;
}

}  // namespace

std::string ExtractRule::Find(const std::string& text) const {
  size_t b = 0, e = 0;
  return Find(text, &b, &e);
}

std::string ExtractRule::Find(const std::string& text, size_t* begin, size_t* end) const {
  // WhatsApp caps a text at 4096 characters.
  const std::string t = text.size() > 4096 ? text.substr(0, 4096) : text;
  for (const auto& re : patterns) {
    Regex::Match m;
    if (!re.Search(t, &m)) continue;
    size_t value_end = CutAtStopWord(t, m.group_begin, m.group_end, stop_words);
    std::string v = Trim(t.substr(m.group_begin, value_end - m.group_begin));
    std::string normalized;
    if (!v.empty() && Validate(validate, v, &normalized)) {
      *begin = m.begin;
      // A value cut at a stop word ends the match there: the rest of the answer is left as it was.
      *end = value_end < m.group_end ? value_end : m.end;
      return normalized;
    }
  }
  const std::string lower = Lower(t);
  for (const auto& [phrase, value] : keywords) {
    for (size_t at = lower.find(phrase); at != std::string::npos; at = lower.find(phrase, at + 1)) {
      bool left = at == 0 || !IsWordChar(lower[at - 1]);
      size_t stop = at + phrase.size();
      bool right = stop >= lower.size() || !IsWordChar(lower[stop]);
      if (left && right) {
        *begin = at;
        *end = stop;
        return value;
      }
    }
  }
  return "";
}

int RolloutBucket(const std::string& flow, const std::string& id) {
  uint64_t h = 1469598103934665603ULL;  // FNV-1a, 64 bits, then a finaliser
  for (char c : flow + "/" + id) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  // FNV alone keeps neighbouring IDs (phone numbers differ in their last digits) in related
  // buckets; MurmurHash3's finaliser spreads them.
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return static_cast<int>(h % 100);
}

bool Flow::RolledOutTo(const std::string& key, const std::vector<std::string>& ids) const {
  if (!rollout.enabled) return true;
  for (const auto& id : ids) {
    if (!id.empty() &&
        std::find(rollout.allow.begin(), rollout.allow.end(), id) != rollout.allow.end())
      return true;
  }
  return RolloutBucket(name, key) < rollout.percent;
}

bool Step::Accepts(const std::string& media_kind) const {
  return std::find(accepts.begin(), accepts.end(), media_kind) != accepts.end();
}

const Step* Flow::Find(const std::string& id) const {
  for (const auto& s : steps) {
    if (s.id == id) return &s;
  }
  return nullptr;
}

std::string Flow::Label(const std::string& field) const {
  for (const auto& s : steps) {
    if (s.field == field && !s.label.empty()) return s.label;
    for (const auto& r : s.extract) {
      if (r.field == field) return r.label;
    }
  }
  return field;
}

bool Flow::IsPhotoField(const std::string& field) const {
  for (const auto& s : steps) {
    if (s.kind == Step::Kind::kCollectPhotos && s.field == field) return true;
  }
  return false;
}

Status FlowSet::Add(const std::string& json, const std::string& origin,
                    const SchemaRegistry& schemas) {
  rapidjson::Document d;
  Status valid = schemas.ValidateAs("flow", 1, json, &d);
  if (!valid.ok()) return Status(Code::kInvalidArgument, origin + ": " + valid.message());
  auto f = std::make_shared<Flow>();
  f->name = JsonStr(d, "name");
  f->description = JsonStr(d, "description");
  f->start = JsonStr(d, "start");
  f->triggers = Strings(JsonMember(d, "triggers"), true);
  f->greeting = JsonStr(d, "greeting");
  if (JsonMember(d, "media_retention_days").IsInt())
    f->media_retention_days = d["media_retention_days"].GetInt();
  if (JsonMember(d, "inactivity_timeout_seconds").IsInt()) {
    f->inactivity_timeout_seconds = d["inactivity_timeout_seconds"].GetInt();
  }
  f->resume_on_timeout = JsonStr(d, "on_timeout") == "resume";
  f->on_hold = JsonStr(d, "on_hold");
  f->resumed = JsonStr(d, "resumed");
  f->fallback = JsonStr(d, "fallback");
  f->extractor = JsonStr(d, "extractor");
  const auto& rollout = JsonMember(d, "rollout");
  if (rollout.IsObject()) {
    f->rollout.enabled = JsonMember(rollout, "enabled").IsTrue();
    f->rollout.allow = Strings(JsonMember(rollout, "allow"), false);
    const auto& percent = JsonMember(rollout, "percent");
    f->rollout.percent = percent.IsInt() ? percent.GetInt() : 0;
  }
  if (f->fallback == f->name)
    return Status(Code::kInvalidArgument,
                  origin + ": /fallback: a flow cannot fall back to itself");
  const auto& assignment = JsonMember(d, "assignment");
  if (assignment.IsObject()) {
    f->assigned = true;
    const auto& tmpl = JsonMember(assignment, "template");
    f->assignment.template_name = JsonStr(tmpl, "name");
    f->assignment.template_language = JsonStr(tmpl, "language");
    f->assignment.intro = JsonStr(assignment, "intro");
    f->assignment.cancelled = JsonStr(assignment, "cancelled");
    f->assignment.closed = JsonStr(assignment, "closed");
    f->assignment.expired = JsonStr(assignment, "expired");
    // Its assignment's TTL (--assignment_ttl_seconds) ends the run, with assignment.expired: a
    // second clock would end a checklist the manager still counts as active.
    for (const char* key : {"inactivity_timeout_seconds", "on_timeout"}) {
      if (d.HasMember(key)) {
        return Status(Code::kInvalidArgument, origin + ": /" + key +
                                                  ": a flow with `assignment` ends when its "
                                                  "assignment expires (--assignment_ttl_seconds)");
      }
    }
  }
  if (f->triggers.empty() && !f->assigned && !JsonMember(d, "default").IsTrue()) {
    return Status(
        Code::kInvalidArgument,
        origin +
            ": /triggers: a flow needs a trigger, `assignment` to be started by one, or `default` "
            "(started by --default_flow)");
  }
  const auto& cancel = JsonMember(d, "cancel");
  f->cancel_keyword = NormalizeKeyword(JsonStr(cancel, "keyword"));
  f->cancel_reply = JsonStr(cancel, "reply");
  const auto& steps = d["steps"];
  for (rapidjson::SizeType i = 0; i < steps.Size(); ++i) {
    const auto& v = steps[i];
    Step s;
    s.id = JsonStr(v, "id");
    std::string kind = JsonStr(v, "kind");
    s.kind = kind == "collect_photos" ? Step::Kind::kCollectPhotos
             : kind == "buttons"      ? Step::Kind::kButtons
             : kind == "summary"      ? Step::Kind::kSummary
             : kind == "complete"     ? Step::Kind::kComplete
             : kind == "handoff"      ? Step::Kind::kComplete
             : kind == "checklist"    ? Step::Kind::kChecklist
             : kind == "confirm"      ? Step::Kind::kConfirm
             : kind == "detect"       ? Step::Kind::kDetect
                                      : Step::Kind::kAskText;
    s.prompt = JsonStr(v, "prompt");
    s.invalid = JsonStr(v, "invalid");
    s.next = JsonStr(v, "next");
    s.field = JsonStr(v, "field");
    s.label = JsonStr(v, "label");
    s.validate = ParseValidation(JsonStr(v, "validate"));
    s.done_keyword = NormalizeKeyword(JsonStr(v, "done_keyword"));
    s.first_ack = JsonStr(v, "first_ack");
    s.not_a_photo = JsonStr(v, "not_a_photo");
    if (JsonMember(v, "accepts").IsArray()) s.accepts = Strings(JsonMember(v, "accepts"), false);
    s.empty = JsonStr(v, "empty");
    s.expired = JsonStr(v, "expired");
    s.partly_expired = JsonStr(v, "partly_expired");
    s.late = JsonStr(v, "late");
    s.summary = Strings(JsonMember(v, "summary"), false);
    s.hands_off = kind == "handoff";
    s.deliver = JsonMember(v, "deliver").IsTrue() || s.hands_off;
    s.sink = JsonStr(v, "sink");
    s.photo_required = JsonStr(v, "photo_required");
    s.photo_pending = JsonStr(v, "photo_pending");
    s.note_required = JsonStr(v, "note_required");
    s.confirm_keyword = NormalizeKeyword(JsonStr(v, "confirm_keyword"));
    s.result_type = JsonStr(v, "result");
    s.handoff = JsonStr(v, "handoff");
    for (const auto& x : Strings(JsonMember(v, "strip"), false)) s.strip.push_back(Lower(x));
    std::stable_sort(s.strip.begin(), s.strip.end(),
                     [](const auto& x, const auto& y) { return x.size() > y.size(); });
    if (JsonMember(v, "attempts").IsInt()) s.attempts = JsonMember(v, "attempts").GetInt();
    s.own.field = s.field;
    s.own.validate = s.validate;
    Status rules = ParseRules(v, origin + ": /steps/" + std::to_string(i), &s.own);
    if (!rules.ok()) return rules;
    const auto& extract = JsonMember(v, "extract");
    if (extract.IsArray()) {
      for (rapidjson::SizeType e = 0; e < extract.Size(); ++e) {
        ExtractRule rule;
        Status st = ParseExtract(
            extract[e], origin + ": /steps/" + std::to_string(i) + "/extract/" + std::to_string(e),
            &rule);
        if (!st.ok()) return st;
        s.extract.push_back(std::move(rule));
      }
    }
    const auto& buttons = JsonMember(v, "buttons");
    if (buttons.IsArray()) {
      for (const auto& b : buttons.GetArray()) {
        Button button{JsonStr(b, "id"), JsonStr(b, "title"), JsonStr(b, "next"),
                      Strings(JsonMember(b, "keywords"), true)};
        button.keywords.push_back(NormalizeKeyword(button.title));
        s.buttons.push_back(std::move(button));
      }
    }
    f->steps.push_back(std::move(s));
  }
  Status st = CheckFlow(*f, origin);
  if (!st.ok()) return st;
  for (const auto& other : flows_) {
    if (other->name == f->name)
      return Status(Code::kInvalidArgument,
                    origin + ": /name: flow '" + f->name + "' defined twice");
    for (const auto& t : f->triggers) {
      if (std::find(other->triggers.begin(), other->triggers.end(), t) != other->triggers.end()) {
        return Status(Code::kInvalidArgument, origin + ": /triggers: '" + t +
                                                  "' already starts flow '" + other->name + "'");
      }
    }
  }
  flows_.push_back(std::move(f));
  return Status::Ok();
}

Result<FlowSet> FlowSet::LoadDir(const std::string& dir, const SchemaRegistry& schemas) {
  auto files = ReadJsonFiles(dir);
  if (!files.ok() && files.status().code() == Code::kNotFound)
    return Status(Code::kNotFound, "flow " + files.status().message());
  if (!files.ok()) return files.status();
  FlowSet set;
  for (const auto& f : *files) {
    Status st = set.Add(f.text, f.path, schemas);
    if (!st.ok()) return st;
  }
  if (set.size() == 0) return Status(Code::kNotFound, "no flows (*.json) in " + dir);
  for (const auto& f : set.flows_) {
    const Flow* fallback = f->fallback.empty() ? nullptr : set.Find(f->fallback);
    if (!f->fallback.empty() && (!fallback || fallback->assigned)) {
      return Status(Code::kInvalidArgument, dir + ": flow '" + f->name + "': /fallback: no flow '" +
                                                f->fallback + "' a person can start");
    }
    if (fallback && fallback->rollout.enabled) {
      return Status(Code::kInvalidArgument,
                    dir + ": flow '" + f->name + "': /fallback: flow '" + f->fallback +
                        "' is itself rolled out; a fallback goes to everyone");
    }
  }
  return set;
}

const Flow* FlowSet::Find(const std::string& name) const {
  for (const auto& f : flows_) {
    if (f->name == name) return f.get();
  }
  return nullptr;
}

const Flow* FlowSet::ForTrigger(const std::string& text) const {
  std::string key = NormalizeKeyword(text);
  for (const auto& f : flows_) {
    if (std::find(f->triggers.begin(), f->triggers.end(), key) != f->triggers.end()) return f.get();
  }
  return nullptr;
}

std::vector<std::string> FlowSet::Texts() const {
  std::vector<std::string> out;
  auto add = [&](const std::string& t) {
    if (!t.empty()) out.push_back(t);
  };
  for (const auto& f : flows_) {
    add(f->greeting);
    add(f->cancel_reply);
    add(f->on_hold);
    add(f->resumed);
    add(f->assignment.intro);
    add(f->assignment.cancelled);
    add(f->assignment.closed);
    add(f->assignment.expired);
    for (const auto& s : f->steps) {
      for (const auto* t :
           {&s.prompt, &s.invalid, &s.first_ack, &s.not_a_photo, &s.empty, &s.expired,
            &s.partly_expired, &s.late, &s.photo_required, &s.photo_pending, &s.note_required}) {
        add(*t);
      }
      for (const auto& r : s.extract) {
        add(r.prompt);
        add(r.invalid);
      }
    }
  }
  return out;
}

std::string FlowSet::Menu(const std::vector<std::string>& only) const {
  std::string out;
  std::vector<const Flow*> offered;  // flows a user can start (assigned ones are started for them)
  for (const auto& f : flows_) {
    if (f->triggers.empty()) continue;
    if (only.empty() || std::find(only.begin(), only.end(), f->name) != only.end())
      offered.push_back(f.get());
  }
  for (size_t i = 0; i < offered.size(); ++i) {
    out += (i == 0                    ? "Send "
            : i + 1 == offered.size() ? ", or "
                                      : ", ") +
           offered[i]->triggers[0] + " to " + offered[i]->description;
  }
  return offered.empty() ? "" : out + ".";
}

Status CheckFlowSet(const FlowSet& flows, const std::string& default_flow,
                    const std::string& checklist_flow) {
  if (!default_flow.empty()) {
    const Flow* f = flows.Find(default_flow);
    if (!f || f->assigned) {
      return Status(Code::kInvalidArgument,
                    "--default_flow: no flow '" + default_flow + "' a person can start");
    }
  }
  if (!checklist_flow.empty()) {
    const Flow* f = flows.Find(checklist_flow);
    if (!f || !f->assigned) {
      return Status(Code::kInvalidArgument,
                    "--checklist_flow: no flow '" + checklist_flow + "' with `assignment`");
    }
  }
  return Status::Ok();
}

std::string FlowSetSummary(const FlowSet& flows) {
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  w.StartObject();
  w.Key("flows");
  w.StartArray();
  for (const auto& f : flows.all()) {
    w.StartObject();
    w.Key("name");
    w.String(f->name);
    w.Key("triggers");
    w.StartArray();
    for (const auto& t : f->triggers) w.String(t);
    w.EndArray();
    w.Key("assigned");
    w.Bool(f->assigned);
    if (f->rollout.enabled) {
      w.Key("rollout");
      w.StartObject();
      w.Key("percent");
      w.Int(f->rollout.percent);
      w.Key("allow");
      w.Uint(static_cast<unsigned>(f->rollout.allow.size()));
      w.EndObject();
    }
    if (!f->fallback.empty()) {
      w.Key("fallback");
      w.String(f->fallback);
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(b.GetString(), b.GetSize());
}

}  // namespace convoy::conversation
