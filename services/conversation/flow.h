#pragma once
// Flows as data: deploy/flows/*.json, validated against proto-schemas/flow.v1.json and then
// checked for what a schema cannot say (every `next` names a step, a kind has what it needs,
// patterns compile, no trigger is claimed twice). Plain structs: the engine never sees JSON.
#include <map>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "convoy/json.h"
#include "convoy/status.h"

namespace convoy::conversation {

enum class Validation { kNone, kNonEmpty, kEmail, kPrice };
// Whether text passes; *normalized gets the value to store (trimmed; a price as digits.cents).
bool Validate(Validation v, const std::string& text, std::string* normalized);

struct Button {
  std::string id, title, next;
  std::vector<std::string> keywords;  // upper case; a typed reply equal to one picks the button
};

struct ExtractRule {
  std::string field, label, prompt, invalid;
  Validation validate = Validation::kNone;
  std::vector<std::shared_ptr<const std::regex>> patterns;  // group 1 (or the match) is the value
  std::vector<std::pair<std::string, std::string>> keywords;  // lower-case phrase -> value, longest first
  // The value found in text, or "".
  std::string Find(const std::string& text) const;
};

struct Step {
  // kChecklist: the assignment's questions, one at a time ("Question i of N"); kConfirm: a summary
  // and a keyword that confirms it.
  enum class Kind { kAskText, kCollectPhotos, kButtons, kSummary, kComplete, kChecklist, kConfirm };
  std::string id;
  Kind kind = Kind::kAskText;
  std::string prompt, invalid, next, field, label;
  Validation validate = Validation::kNone;
  std::vector<ExtractRule> extract;  // ask_text: fields found in the answer, missing ones asked
  std::string done_keyword, first_ack, empty, expired, late;  // collect_photos
  std::string not_a_photo;  // collect_photos: the answer to a video, a document, a sticker, ...
  std::vector<Button> buttons;                                // buttons, summary
  std::vector<std::string> summary;                           // summary: fields, in order
  bool deliver = false;                                       // complete: emit flow.completed
  // complete: the sink (convoy-outbound's --sinks_file) the run's result is delivered to, and the
  // result's type ("listing.submitted"); no sink: flow.completed only.
  std::string sink, result_type;
  // checklist: what a photo-required question says to a text, and to a photo without a caption.
  std::string photo_required, photo_pending;
  std::string confirm_keyword;  // confirm: upper case
};

// A flow started by an assignment (the checklist), not by a trigger: how it opens and closes.
struct AssignmentTexts {
  std::string template_name, template_language;  // the first message outside the 24-hour window
  std::string intro;      // inside the window: {operator}, {title}, {count}
  std::string cancelled;  // said when the manager cancels it
  std::string closed;     // said to a later message after a cancel
  std::string expired;    // said when it expires, if the window allows
};

struct Flow {
  std::string name, description, start, cancel_keyword, cancel_reply;
  std::vector<std::string> triggers;  // upper case
  std::vector<Step> steps;
  bool assigned = false;  // started by an assignment (has `assignment`), never by a trigger
  AssignmentTexts assignment;
  const Step* Find(const std::string& id) const;
  // The label of a field for summaries ("Price"), or the field name.
  std::string Label(const std::string& field) const;
  bool IsPhotoField(const std::string& field) const;
};

class FlowSet {
 public:
  // Loads every *.json in dir; the first bad file is an error naming the file and where in it.
  static Result<FlowSet> LoadDir(const std::string& dir, const SchemaRegistry& schemas);
  // One flow from its JSON text; `origin` names it in errors.
  Status Add(const std::string& json, const std::string& origin, const SchemaRegistry& schemas);

  const Flow* Find(const std::string& name) const;
  // The flow a text starts (trimmed, case-insensitive trigger), or nullptr.
  const Flow* ForTrigger(const std::string& text) const;
  // "Send SELL to list an item for sale." for every flow.
  std::string Menu() const;
  size_t size() const { return flows_.size(); }

 private:
  std::vector<std::shared_ptr<const Flow>> flows_;
};

// Upper-cased, trimmed, inner white space folded: how keywords are compared.
std::string NormalizeKeyword(const std::string& text);

}  // namespace convoy::conversation
