#pragma once
// Flows as data: deploy/flows/*.json, validated against proto-schemas/flow.v1.json and then
// checked for what a schema cannot say (every `next` names a step, a kind has what it needs,
// patterns compile, no trigger is claimed twice). Plain structs: the engine never sees JSON.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "convoy/json.h"
#include "convoy/regex.h"
#include "convoy/status.h"

namespace convoy::conversation {

// kName: a person's name (letters, spaces, . ' -; 2..80 characters, no digits); kWords: a short
// phrase of letters (a nationality, a city; at most 60 characters).
enum class Validation { kNone, kNonEmpty, kEmail, kPrice, kName, kWords };
// Whether text passes; *normalized gets the value to store (trimmed; a price as digits.cents).
bool Validate(Validation v, const std::string& text, std::string* normalized);

struct Button {
  std::string id, title, next;
  std::vector<std::string> keywords;  // upper case; a typed reply equal to one picks the button
};

struct ExtractRule {
  std::string field, label, prompt, invalid;
  Validation validate = Validation::kNone;
  // The rest of the answer, once the step's own value is cut out of it ("me@x.com, after 5pm" ->
  // "after 5pm"): for a free phrase that comes with a value a pattern finds.
  bool rest = false;
  std::vector<Regex> patterns;  // group 1 (or the match) is the value
  // A value a pattern found ends before its first stop word (a whole word, any case); one that
  // begins with a stop word is no value ("my name is John and I need..." -> "John").
  std::vector<std::string> stop_words;
  std::vector<std::pair<std::string, std::string>>
      keywords;  // lower-case phrase -> value, longest first
  // The value found in text, or "".
  std::string Find(const std::string& text) const;
  // Where the value Find returns was found ([begin, end) in text), for cutting it out.
  std::string Find(const std::string& text, size_t* begin, size_t* end) const;
  bool HasRules() const { return !patterns.empty() || !keywords.empty(); }
};

struct Step {
  // kChecklist: the assignment's questions, one at a time ("Question i of N"); kConfirm: a summary
  // and a keyword that confirms it.
  // kDetect: a value recognised by rules only (a service from a keyword table): not understood
  // -> asked again in other words (`invalid`), and after `attempts` misses the run goes to
  // `handoff`.
  enum class Kind {
    kAskText,
    kCollectPhotos,
    kButtons,
    kSummary,
    kComplete,
    kChecklist,
    kConfirm,
    kDetect
  };
  std::string id;
  Kind kind = Kind::kAskText;
  std::string prompt, invalid, next, field, label;
  Validation validate = Validation::kNone;
  std::vector<ExtractRule> extract;  // ask_text: fields found in the answer, missing ones asked
  // ask_text, detect: patterns and keywords that find the step's own value inside an answer (and in
  // the message that started the flow); an ask_text answer they find nothing in is taken whole.
  ExtractRule own;
  // ask_text: lead-ins cut from the start of an answer taken whole ("my name is", "i'm"), lower
  // case.
  std::vector<std::string> strip;
  int attempts = 2;     // detect: misses before the handoff
  std::string handoff;  // detect: the step a run goes to when it is not understood
  std::string done_keyword, first_ack, empty, expired, late;  // collect_photos
  std::string partly_expired;  // collect_photos: some photos expired, some left ({kept}, {lost},
                               // {them}: it or them)
  std::string
      not_a_photo;  // collect_photos: the answer to media the step does not accept (a sticker, ...)
  // collect_photos, checklist: the kinds of media taken like a photo ("image", "document", "video",
  // "audio": Meta's message types; a voice note is audio). Default: photos only.
  std::vector<std::string> accepts{"image"};
  bool Accepts(const std::string& media_kind) const;
  std::vector<Button> buttons;       // buttons, summary
  std::vector<std::string> summary;  // summary: fields, in order
  bool deliver = false;              // complete: emit flow.completed
  // complete: the sink (convoy-outbound's --sinks_file) the run's result is delivered to, and the
  // result's type ("listing.submitted"); no sink: flow.completed only.
  std::string sink, result_type;
  // A `handoff` step: a complete step that also puts the conversation in human hands. Its sink
  // gets `conversation.handoff_requested` (the transcript and the fields) instead of a result, and
  // every later customer message as `conversation.message` until an agent releases it.
  bool hands_off = false;
  // checklist: what a photo-required question says to a text, and to a photo without a caption.
  std::string photo_required, photo_pending;
  std::string note_required;  // checklist: said to an answer that needs a note and came without one
  std::string confirm_keyword;  // confirm: upper case
};

// A flow started by an assignment (the checklist), not by a trigger: how it opens and closes.
struct AssignmentTexts {
  std::string template_name, template_language;  // the first message outside the 24-hour window
  std::string intro;                             // inside the window: {operator}, {title}, {count}
  std::string cancelled;                         // said when the manager cancels it
  std::string closed;                            // said to a later message after a cancel
  std::string expired;                           // said when it expires, if the window allows
};

// Who gets a flow while it is rolled out: the people on `allow`, and `percent` of everyone else by
// a stable hash of their ID (RolloutBucket). The rest get the flow's `fallback` (or the menu).
struct Rollout {
  bool enabled = false;
  std::vector<std::string> allow;  // phone numbers (wa_id) or business-scoped user IDs
  int percent = 100;
};
// 0..99, the same for an ID and a flow on every run and every replica (FNV-1a of "flow/id",
// finalised as MurmurHash3's fmix64, modulo 100).
int RolloutBucket(const std::string& flow, const std::string& id);

struct Flow {
  std::string name, description, start, cancel_keyword, cancel_reply;
  // Said when a checklist assignment puts a run of this flow on hold, and when the run resumes
  // after it (before the step's question again); engine defaults when empty.
  std::string on_hold, resumed;
  // Prepended to the first message the business sends in a conversation, once in its life.
  std::string greeting;
  int media_retention_days = 0;  // days media keeps this flow's photos; 0: media's --retention_days
  // A run with no message from the person for this long ends (flow.expired); 0: the engine's
  // default (--inactivity_timeout_seconds). Never set on a flow with `assignment`.
  int64_t inactivity_timeout_seconds = 0;
  // on_timeout "resume": an expired run stays where it was (only flow.expired is emitted) instead
  // of ending.
  bool resume_on_timeout = false;
  Rollout rollout;
  std::string fallback;  // the flow people outside the rollout get ("" -> the menu)
  // The extractor (convoy-outbound --extractors_file) asked for the fields an answer's rules could
  // not find; "" -> none: the person is asked again.
  std::string extractor;
  // Whether a person (their IDs: phone, BSUID; `key`, the stable one, is hashed) gets this flow.
  bool RolledOutTo(const std::string& key, const std::vector<std::string>& ids) const;
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
  // Every flow's texts (prompts, replies, greeting), for checks that apply to all of them.
  std::vector<std::string> Texts() const;
  // The flow a text starts (trimmed, case-insensitive trigger), or nullptr.
  const Flow* ForTrigger(const std::string& text) const;
  // "Send SELL to list an item for sale." for every flow a person can start, or only for those
  // named in `only` when it names any; "" when none is offered.
  std::string Menu(const std::vector<std::string>& only = {}) const;
  size_t size() const { return flows_.size(); }
  const std::vector<std::shared_ptr<const Flow>>& all() const { return flows_; }

 private:
  std::vector<std::shared_ptr<const Flow>> flows_;
};

// What convoy-conversation needs of a set (at start and at every reload): the --default_flow is a
// flow a person can start, the --checklist_flow one with `assignment`. Empty names are not checked.
Status CheckFlowSet(const FlowSet& flows, const std::string& default_flow,
                    const std::string& checklist_flow);
// {"flows": [{"name", "triggers", "default", "rollout", "fallback"}...]} for the admin API and
// logs.
std::string FlowSetSummary(const FlowSet& flows);

// ASCII lower case: how keyword phrases and lead-ins are compared.
std::string Lower(std::string s);

// Upper-cased, trimmed, inner white space folded: how keywords are compared.
std::string NormalizeKeyword(const std::string& text);

}  // namespace convoy::conversation
