#pragma once
// The flow engine: a pure function (flows, state, event, now) -> (new state, effects). No
// broker, no database, no clock of its own: the processor loads the state under the
// conversation's lock, calls Advance, and writes the state and the effects in one transaction.
//
// Time: an inbound message carries WhatsApp's `timestamp` (when the user sent it); that is
// the event's time. Internal events use `now`. Steps remember when they were entered, so an
// update that was sent before the conversation left a step (and delivered after) is applied
// to the step it belongs to: a late photo is added to its photo step and the user gets the
// corrected count; a late answer to a question that a later answer already settled changes
// nothing.
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "engine/flow.h"

namespace convoy::conversation {

// A photo, or any media a step accepts like one (a document, a video, a voice note).
struct Photo {
  Photo() = default;
  Photo(std::string id, int64_t sent_at, std::string stored = "", std::string why_missing = "")
      : media_id(std::move(id)),
        at(sent_at),
        stored_name(std::move(stored)),
        missing(std::move(why_missing)) {}
  std::string media_id;
  int64_t at = 0;              // WhatsApp timestamp of the message that carried it
  std::string stored_name;     // set when media.stored comes back
  std::string missing;         // a delivered result's photo that was not stored: why
  std::string kind = "image";  // the message's type: image, document, video or audio
  std::string mime_type;       // the webhook's, then the verified one from media.stored
  std::string filename;        // a document's name as the sender gave it, made safe (SafeFileName)
};

// A sender's file name as it may travel in a result: its last path part, without control
// characters, at most 120 bytes (cut at a UTF-8 boundary); "" when nothing is left.
std::string SafeFileName(const std::string& name);

// A run's result on its way to a sink (Step::sink). It is delivered (an outbound.deliver command)
// once every photo it names is stored or known to be missing: at once when they all are, else
// when the last media.stored/failed comes back or, at the latest, at due_at (the rest named as
// missing). Until then it waits in the conversation's state, across runs.
struct PendingResult {
  std::string id;  // the result's dedupe key: its webhook-id at the sink, stable across retries
  std::string sink, type, flow, outcome;
  int64_t completed_at = 0, due_at = 0;
  std::map<std::string, std::string> fields;
  std::map<std::string, std::vector<Photo>> photos;
};

// A checklist assignment's run (the checklist flow): its questions, and where the operator is.
// Answers are fields "q1".."qN" of the run, their photos photo fields "q1".."qN".
struct Question {
  std::string text;
  std::string photo = "optional";          // required | optional | none
  std::vector<std::string> answers;        // the allowed answers ("OK", "NOT OK"), or any text
  std::vector<std::string> note_required;  // answers that need a note ("NOT OK - guard cracked")
};

// An answer to a question with fixed answers, as operators type it: the longest allowed answer the
// text begins with (case and spacing aside), then a separator ("-", ":", ",", "–", "—", ".", or
// just a space) and the rest as its note: "NOT OK - guard cracked" → {"NOT OK", "guard cracked"},
// "ok" → {"OK", ""}. Empty answer: no allowed answer matches ("OKAY", "NOT").
struct TypedAnswer {
  std::string answer, note;
};
TypedAnswer ParseTypedAnswer(const std::vector<std::string>& answers, const std::string& text);

// What a person hears when a photo (or a document, video, voice note: `kind`, the message's type)
// of theirs could not be saved, by media.failed's code (expired, too_large, not_a_photo, damaged;
// anything else is said plainly too): never the technical reason, which stays in the audit and the
// logs. "Please send it again" only when the step they are on still takes that kind.
std::string PhotoFailedText(const std::string& code, bool send_again,
                            const std::string& kind = "image");

struct AssignmentRun {
  std::string id, title, reference, operator_name, flow;
  std::vector<Question> questions;
  size_t index = 0;    // the question being answered
  bool asked = false;  // the first question went (after a template, on the operator's reply)
  int64_t answered_at =
      0;  // when the last answer was sent: one sent no later was for an earlier question
  std::string pending_photo;   // a photo sent first, waiting for its note
  std::string pending_answer;  // an answer that needs a note (a tapped "NOT OK"), waiting for it
};

struct ConversationState {
  std::string flow;        // "" when no flow is running
  std::string step;        // the current step of `flow`
  std::string asking;      // ask_text with extract: the missing field being asked
  int64_t entered_at = 0;  // when the current step was entered (event time)
  std::map<std::string, std::string> fields;
  std::map<std::string, std::vector<Photo>> photos;  // photo field -> distinct photos
  std::vector<std::string> acked;  // photo fields whose first photo was acknowledged
  std::vector<std::pair<std::string, int64_t>> history;  // steps of this run: (step, entered_at)
  int64_t messages = 0;         // inbound messages applied, over the conversation's life
  int64_t last_inbound_at = 0;  // newest WhatsApp timestamp seen
  // Photos of a delivered run that were still being fetched at SUBMIT: media id → the upload
  // destination; uploaded when their media.stored comes back. Kept across runs.
  std::map<std::string, std::string> pending_uploads;
  std::vector<PendingResult> results;  // results waiting for their photos. Kept across runs.
  AssignmentRun assignment;            // the checklist flow's run (id empty otherwise)
  std::string closed_note;    // said once to the next message after an assignment was cancelled
  bool greeted = false;       // a flow's greeting went out: never again in this conversation
  std::string extracting;     // the extractor request the current step waits for ("" -> none)
  int64_t extracting_at = 0;  // when the message it is about was sent: the step moves on as of then
  int misses = 0;             // detect: answers of this step not understood so far
  // A listing or lead run a checklist assignment put on hold: its state as JSON (flow, step,
  // fields, photos, history), resumed when no flow runs any more ("" none). Kept across runs.
  std::string set_aside;
  // The run its inactivity timeout ended (as set_aside holds one) and when it fell due: the
  // person's next message, if sent before then (delivered late), answers it; any other drops it.
  std::string expired_run;
  int64_t expired_due = 0;
};

struct Event {
  // The business number's own greeting (the registry's `greeting`), said before the first message
  // the business sends in the conversation's life, whatever flow sends it; "" when the number has
  // none (then the flow's greeting, if it has one).
  std::string number_greeting;
  // The number's own default flow (the registry's `default_flow`): what a message that names no
  // flow starts on this number; "" (or a flow not loaded) falls back to --default_flow.
  std::string number_default_flow;
  // The flows the number runs (the registry's `flows`); empty: every loaded flow. Only these start
  // on it, by trigger or by default, and its menu names only these; a run already going goes on.
  std::vector<std::string> number_flows;
  // The language of the templates the number's flows send (the registry's `templates_language`),
  // over the flow's own; "" when the number has none (then the flow's).
  std::string number_templates_language;
  // kRecorded: an internal event with nothing for the flow to do (media.uploaded, ...): audited
  // only. kResultDue: a pending result's wait for its photos is over (result.due, a delayed
  // self-event).
  enum class Kind {
    kText,
    kMedia,  // an image, document, video or audio message with a media id (message_type says which)
    kButton,
    kOther,
    kMediaStored,
    kMediaFailed,
    kSendSucceeded,
    kSendFailed,
    kRecorded,
    kResultDue,
    kAssignmentStarted,  // a checklist assigned to this person starts (assignment.started)
    kAssignmentEnded,  // their active one was cancelled or expired (reason), by the manager or the
                       // clock
    kExtracted,  // an extractor's answer (outbound.extracted): fields, or reason when it failed
    kHandover,   // the thread's owner changed (inbound.handover): handover_action, the app ids
    // The run's inactivity timeout passed (its due time, conversations.run_expires_at, is the
    // processor's and the sweeper's to judge): the run ends, or stays if its flow resumes.
    kRunExpired,
  };
  Kind kind = Kind::kOther;
  // Which webhook field an inbound message came on (inbound.message `channel`): only kMessages is
  // the flow's; a message seen on standby (another app or Meta's agent owns the thread), an echo of
  // what the business typed in the WhatsApp Business app, or a backfilled one is recorded, never
  // answered (Advance). `outgoing`: the business (or the thread's owner) wrote it (direction out).
  enum class Channel { kMessages, kStandby, kEcho, kHistory };
  Channel channel = Channel::kMessages;
  bool outgoing = false;
  std::string handover_action;  // kHandover: "control_passed" or "control_taken"
  std::string previous_owner_app_id, new_owner_app_id;  // kHandover: as Meta named them ("" if not)
  std::string id;  // the trigger, unique in the conversation's life: names a result it completes
  std::string result_id;    // result.due
  std::string text;         // text body, caption, or button title
  std::string button_id;    // button / list reply id, template button payload
  std::string media_id;     // media, media.stored, media.failed
  std::string mime_type;    // media; media.stored: the verified type
  std::string sha256;       // media, as Meta sent it
  std::string filename;     // a document's file name, as the sender gave it
  std::string stored_name;  // media.stored
  std::string reason;       // media.failed, outbound.failed: for the audit, never shown to the user
  std::string code;  // media.failed: "over_quota", or "" for any other failure; outbound.failed:
                     // Meta's code
  std::string command_key;  // outbound.failed: the dedupe key of the send that failed
  std::string profile_name;
  std::string
      message_type;  // inbound messages: Meta's type (text, image, video, document, sticker, ...)
  int64_t wa_timestamp = 0;  // inbound messages: seconds since the epoch
  AssignmentRun assignment;  // kAssignmentStarted: the run to start; kAssignmentEnded: its id
  // Who the conversation is with: its stable key (hashed for a rollout) and the person's IDs
  // (phone, BSUID; matched against a rollout's allow list).
  std::string person;
  std::vector<std::string> ids;
  std::map<std::string, std::string>
      fields;          // kExtracted: what the extractor found (result_id: the request)
  int64_t due_at = 0;  // kRunExpired: when the run fell due (seconds since the epoch)
};

struct Effect {
  // kDeliver: a result to its sink (outbound.deliver); kResultDue: a reminder to this conversation
  // after delay_ms (result.due through a delay queue).
  // kSendTemplate: an approved template (name, language, parameters); kAssignmentDone: the
  // assignment is completed with these answers (fields, photos).
  enum class Kind {
    kSendText,
    kSendButtons,
    kFetchMedia,
    kFlowCompleted,
    kUploadMedia,
    kDeliver,
    kResultDue,
    kSendTemplate,
    kAssignmentDone,
    kAssignmentUndeliverable,  // the assignment's template never reached the operator:
                               // assignment_id, why in `text`, and `result` (if the flow has a
                               // sink) for the business
    kExtract,  // ask the flow's extractor (outbound.extract) for `extract` given `text`; result.id:
               // the request
    kHandoff,  // the conversation goes into human hands: its messages to `destination` (a sink),
               // why in `text`
    // A run's inactivity timeout passed (flow.expired on convoy.events): `flow`, the step it was on
    // (`outcome`), `last_activity_at` and `resumed` (the run stays). The only effect of a
    // kRunExpired transition: nothing is said to the person.
    kFlowExpired,
  };
  Kind kind = Kind::kSendText;
  std::string step;  // names the effect inside its trigger: part of its dedupe key
  std::string text;
  std::vector<std::pair<std::string, std::string>> buttons;  // (id, title)
  std::string media_id, mime_type, sha256;
  int keep_days = 0;  // kFetchMedia: the flow's media_retention_days (0: media's --retention_days)
  std::vector<std::string> kinds;  // kFetchMedia: the kinds the step takes (its `accepts`)
  // kUploadMedia: a stored photo to the flow's upload destination (named after the flow).
  std::string stored_name, destination;
  // kFlowCompleted: the run's result.
  std::string flow, outcome;
  std::map<std::string, std::string> fields;
  std::map<std::string, std::vector<Photo>> photos;
  PendingResult result;  // kDeliver, kAssignmentUndeliverable (its sink's body); kResultDue: its id
  int64_t delay_ms = 0;  // kResultDue
  std::string template_name, template_language;  // kSendTemplate
  std::vector<std::string> template_params;
  std::string assignment_id;  // kAssignmentDone, kAssignmentUndeliverable
  std::string extractor;      // kExtract
  struct Field {
    std::string name, description;
    std::vector<std::string> values;  // the only values allowed ("" -> any)
  };
  std::vector<Field> extract;    // kExtract
  int64_t last_activity_at = 0;  // kFlowExpired: the person's last message (WhatsApp's timestamp)
  bool resumed = false;          // kFlowExpired: the flow's on_timeout is resume
};

struct Transition {
  ConversationState state;
  std::vector<Effect> effects;
  std::string note;  // why, for the audit: "started", "answered", "late_photo", "superseded", ...
};

struct EngineSettings {
  int64_t photo_ttl_seconds = 3600;  // photos older than this (to the DONE that closes them) expire
  size_t max_photos = 100;           // a photo step keeps at most this many
  // A result is delivered at the latest this long after completion, photos not yet stored then
  // named as missing.
  int64_t result_photo_wait_seconds = 600;
  // The flow a message that starts no other flow starts ("" -> the menu): --default_flow.
  std::string default_flow;
  // How long a step waits for its extractor before the person is asked instead.
  int64_t extractor_timeout_seconds = 20;
  // All photo steps (or checklist questions) of one run together keep at most this many:
  // --max_photos_per_run, against a user who would fill the media store through many steps.
  size_t max_photos_per_run = 200;
  // A customer's text that is one of these words (any case; --handoff_keywords) asks for a person:
  // the conversation is handed off to handoff_sink with handoff_reply said. Empty: no keyword.
  std::vector<std::string> handoff_keywords{};
  std::string handoff_sink = "conversations";
  std::string handoff_reply = "A member of our team will reply to you here shortly.";
  // A run of a flow that names no inactivity_timeout_seconds ends after this long without a
  // message from the person: --inactivity_timeout_seconds.
  int64_t inactivity_timeout_seconds = 24 * 3600;
};

class Engine {
 public:
  Engine(const FlowSet& flows, EngineSettings settings)
      : flows_(std::make_shared<const FlowSet>(flows)), settings_(std::move(settings)) {}
  Transition Advance(const ConversationState& state, const Event& event, int64_t now) const;
  // Swaps in a new set of flows (validated by the caller): transitions after this see it; a run
  // whose flow or step is gone ends ("flow_unavailable"), others go on where they are.
  void Reload(FlowSet flows);
  std::shared_ptr<const FlowSet> flows() const;
  const EngineSettings& settings() const { return settings_; }
  // How long the state's run may go without a message from the person before it expires: its
  // flow's inactivity_timeout_seconds, else the settings' default; 0 when no run can expire (none
  // runs, or its flow has `assignment`: the assignment's TTL ends it).
  int64_t RunTimeoutSeconds(const ConversationState& state) const;

 private:
  mutable std::mutex mu_;  // guards flows_ (the pointer; a FlowSet is immutable)
  std::shared_ptr<const FlowSet> flows_;
  EngineSettings settings_;
};

}  // namespace convoy::conversation
