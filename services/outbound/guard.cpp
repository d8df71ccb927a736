#include "guard.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <sstream>

#include "convoy/rapidjson_util.h"

namespace convoy::outbound {

namespace {

std::string Escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (std::string("\\^$.|?*+()[]{}/").find(c) != std::string::npos) out += '\\';
    if (c == ' ') {
      out += "\\s+";  // "family  visa" is the same words
      continue;
    }
    out += c;
  }
  return out;
}

// Lower case with every run of white space as one space: how a text is searched for terms.
std::string Folded(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      if (out.empty() || out.back() != ' ') out += ' ';
    } else {
      out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  return out;
}

bool HasWord(const std::string& s) {
  return std::any_of(s.begin(), s.end(),
                     [](unsigned char c) { return std::isalnum(c) || c >= 0x80; });
}

// What is left once a list is cut out: no doubled spaces, no space before punctuation, no empty
// brackets, no dangling lead-in (": ." -> ".").
std::string Tidy(std::string s) {
  auto replace_all = [&](const std::string& from, const std::string& to) {
    for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size()))
      s.replace(at, from.size(), to);
  };
  for (int i = 0; i < 3; ++i) {
    replace_all("()", "");
    replace_all("  ", " ");
    replace_all(" ,", ",");
    replace_all(" .", ".");
    replace_all(" ?", "?");
    replace_all(" !", "!");
    replace_all(":.", ".");
    replace_all(":?", "?");
    replace_all(",.", ".");
    replace_all(",?", "?");
    replace_all("\n\n\n", "\n\n");
  }
  size_t b = 0, e = s.size();
  while (b < e && (std::isspace(static_cast<unsigned char>(s[b])) || s[b] == ',' || s[b] == ':'))
    ++b;
  while (e > b &&
         (std::isspace(static_cast<unsigned char>(s[e - 1])) || s[e - 1] == ',' || s[e - 1] == ':'))
    --e;
  return s.substr(b, e - b);
}

}  // namespace

Result<std::shared_ptr<const ContentGuard>> ContentGuard::Parse(const std::string& json,
                                                                const std::string& origin,
                                                                const SchemaRegistry& schemas) {
  rapidjson::Document d;
  Status valid = schemas.ValidateAs("content_guard", 1, json, &d);
  if (!valid.ok()) return Status(Code::kInvalidArgument, origin + ": " + valid.message());
  auto g = std::make_shared<ContentGuard>();
  g->fallback_ = JsonStr(d, "fallback");
  std::vector<std::string> services;
  for (const auto& s : d["services"].GetArray()) services.emplace_back(s.GetString());
  std::sort(services.begin(), services.end(),
            [](const auto& a, const auto& b) { return a.size() > b.size(); });
  std::string alternation;
  for (const auto& s : services) alternation += (alternation.empty() ? "" : "|") + Escape(s);
  const std::string service = "(?:\\b(?:" + alternation + ")\\b)";
  g->has_services_ = !services.empty();
  for (const auto& s : services) g->terms_.push_back(Folded(s));
  if (g->has_services_) {
    auto compiled = Regex::Compile(service);
    if (!compiled.ok())
      return Status(Code::kInvalidArgument, origin + ": /services: " + compiled.status().message());
    g->service_ = std::move(*compiled);
  }
  const auto& rules = d["rules"];
  for (rapidjson::SizeType i = 0; i < rules.Size(); ++i) {
    Rule r;
    r.name = JsonStr(rules[i], "name");
    std::string pattern = JsonStr(rules[i], "pattern");
    const bool uses_services = pattern.find("{service}") != std::string::npos;
    if (uses_services && !g->has_services_) {
      return Status(Code::kInvalidArgument, origin + ": /rules/" + std::to_string(i) +
                                                " uses {service}: `services` is empty");
    }
    for (size_t at = pattern.find("{service}"); at != std::string::npos;
         at = pattern.find("{service}", at + service.size())) {
      pattern.replace(at, 9, service);
    }
    const auto& min = JsonMember(rules[i], "min_services");
    r.min_services = min.IsInt() ? min.GetInt() : 0;
    auto compiled = Regex::Compile(pattern);
    if (!compiled.ok()) {
      return Status(Code::kInvalidArgument, origin + ": /rules/" + std::to_string(i) +
                                                "/pattern: " + compiled.status().message());
    }
    r.pattern = std::move(*compiled);
    g->fewest_ = g->rules_.empty() ? r.min_services : std::min(g->fewest_, r.min_services);
    g->rules_.push_back(std::move(r));
  }
  return std::shared_ptr<const ContentGuard>(std::move(g));
}

Result<std::shared_ptr<const ContentGuard>> ContentGuard::Load(const std::string& path,
                                                               const SchemaRegistry& schemas) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status(Code::kNotFound, "content guard file not found: " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return Parse(ss.str(), path, schemas);
}

GuardOutcome ContentGuard::Check(const std::string& input) const {
  GuardOutcome out;
  // Meta caps a text at 4096 characters.
  std::string text = input.size() > 4096 ? input.substr(0, 4096) : input;
  if (fewest_ > 0) {
    // No rule can match a text naming fewer service terms than the least any rule needs. They are
    // counted as the service pattern matches them (whole words, longest first, left to right), in
    // a few microseconds: the rules' regular expressions cost ~250 us a text.
    const std::string folded = Folded(text);
    auto word = [](unsigned char c) { return std::isalnum(c) || c == '_'; };
    int found = 0;
    for (size_t i = 0; i < folded.size() && found < fewest_;) {
      size_t matched = 0;
      if (i == 0 || !word(static_cast<unsigned char>(folded[i - 1]))) {
        for (const auto& term : terms_) {
          const size_t end = i + term.size();
          if (term[0] == folded[i] && folded.compare(i, term.size(), term) == 0 &&
              (end == folded.size() || !word(static_cast<unsigned char>(folded[end])))) {
            matched = term.size();
            break;
          }
        }
      }
      if (matched > 0) {
        ++found;
        i += matched;
      } else {
        ++i;
      }
    }
    if (found < fewest_) {
      out.text = input;
      return out;
    }
  }
  for (const auto& rule : rules_) {
    std::string kept;
    size_t from = 0;
    bool hit = false;
    for (const Regex::Match& m : rule.pattern.FindAll(text)) {
      const std::string_view found(text.data() + m.begin, m.end - m.begin);
      const int services = has_services_ ? static_cast<int>(service_.Count(found)) : 0;
      if (services < rule.min_services) continue;
      kept += text.substr(from, m.begin - from);
      from = m.end;
      hit = true;
    }
    if (!hit) continue;
    text = kept + text.substr(from);
    out.rules.push_back(rule.name);
  }
  if (out.rules.empty()) {
    out.text = input;
    return out;
  }
  out.changed = true;
  out.text = Tidy(text);
  if (!HasWord(out.text)) {
    out.text = fallback_;
    out.replaced = true;
  }
  return out;
}

std::string ContentGuard::CheckCommand(const std::string& body, GuardOutcome* outcome) const {
  *outcome = GuardOutcome{};
  rapidjson::Document cmd;
  cmd.Parse(body.c_str(), body.size());
  if (cmd.HasParseError() || !cmd.IsObject() || !cmd.HasMember("message") ||
      !cmd["message"].IsObject())
    return body;
  rapidjson::Value& message = cmd["message"];
  rapidjson::Value* text = nullptr;
  if (message.HasMember("text") && message["text"].IsObject() &&
      message["text"].HasMember("body") && message["text"]["body"].IsString()) {
    text = &message["text"]["body"];
  } else if (message.HasMember("interactive") && message["interactive"].IsObject() &&
             message["interactive"].HasMember("body") &&
             message["interactive"]["body"].IsObject() &&
             message["interactive"]["body"].HasMember("text") &&
             message["interactive"]["body"]["text"].IsString()) {
    text = &message["interactive"]["body"]["text"];
  }
  if (!text) return body;
  *outcome = Check(std::string(text->GetString(), text->GetStringLength()));
  if (!outcome->changed) return body;
  text->SetString(outcome->text.c_str(), static_cast<rapidjson::SizeType>(outcome->text.size()),
                  cmd.GetAllocator());
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  cmd.Accept(w);
  return std::string(b.GetString(), b.GetSize());
}

}  // namespace convoy::outbound
