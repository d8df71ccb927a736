#include "engine/engine.h"

#include <algorithm>
#include <cctype>

#include "engine/state_codec.h"

namespace convoy::conversation {

namespace {

constexpr size_t kQuoteLimit = 100;         // characters of the user's text quoted back
constexpr size_t kSummaryValueLimit = 200;  // characters of one value in a summary
constexpr size_t kButtonBodyLimit = 1024;   // Meta's limit for an interactive message body
constexpr size_t kTextLimit = 4096;         // Meta's limit for a text message body
constexpr size_t kFileNameLimit = 120;      // bytes of a document's file name kept for the result
// Said when a checklist puts a person's run on hold, and when it resumes, when the flow names no
// text.
constexpr const char* kDefaultOnHold =
    "What we were doing is on hold until this checklist is done; we'll pick it up right after.";
constexpr const char* kDefaultResumed = "Now, back to where we were.";
// Said when some of a person's photos expired and some are left, when the flow names no text of its
// own.
constexpr const char* kDefaultPartlyExpired =
    "I only have {kept} of your photos: {lost} sent earlier expired. Send {them} again if you want "
    "{them} included.";
// Said to an answer that needs a note and came without one, when the flow names no text of its own.
constexpr const char* kDefaultNoteRequired =
    "Please add a note for {answer} on question {index}: what did you find? (For example: {answer} "
    "- what you saw.)";

// The separators operators put between an answer and its note.
bool IsSeparatorAt(const std::string& s, size_t i, size_t* width) {
  for (const char* sep : {"\u2013", "\u2014", "-", ":", ",", ".", ";"}) {
    const size_t n = std::char_traits<char>::length(sep);
    if (s.compare(i, n, sep) == 0) {
      *width = n;
      return true;
    }
  }
  return false;
}

std::string Trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

// At most `limit` bytes, cut at a UTF-8 character boundary, "..." marking a cut.
std::string Clip(const std::string& s, size_t limit) {
  if (s.size() <= limit) return s;
  size_t cut = limit - 3;
  while (cut > 0 && (static_cast<unsigned char>(s[cut]) & 0xC0) == 0x80) --cut;
  return s.substr(0, cut) + "...";
}

// Media a step does not take (a sticker; a document where only photos are): the answer in a
// photo step is the step's refusal ("I need photos").
bool IsMediaType(const std::string& type) {
  return type == "image" || type == "video" || type == "document" || type == "sticker" ||
         type == "audio";
}

bool IsInbound(Event::Kind k) {
  return k == Event::Kind::kText || k == Event::Kind::kMedia || k == Event::Kind::kButton ||
         k == Event::Kind::kOther;
}

// "photo", "document", "video", "recording": how a kind of media is named to the person.
const char* MediaNoun(const std::string& kind) {
  if (kind == "document") return "document";
  if (kind == "video") return "video";
  if (kind == "audio") return "recording";
  return "photo";
}

// One call of Advance: the flow, the transition being built and the event's time.
class Run {
 public:
  Run(const FlowSet& flows, const EngineSettings& settings, Transition& t, const Event& ev,
      int64_t at)
      : flows_(flows), settings_(settings), t_(t), s_(t.state), ev_(ev), at_(at) {}

  void Inbound() {
    s_.extracting.clear();  // a new message: an extractor's answer to an older one comes too late
    s_.extracting_at = 0;
    if (!s_.expired_run.empty()) {
      // A run its timeout ended takes back a message sent before it fell due (delivered late: an
      // outage, a backlog), which it would have had; a message sent after starts fresh.
      const std::string run = std::move(s_.expired_run);
      const int64_t due = s_.expired_due;
      s_.expired_run.clear();
      s_.expired_due = 0;
      if (s_.flow.empty() && at_ < due) Restore(run);
    }
    if (IsText() && !settings_.handoff_keywords.empty()) {
      const std::string word = NormalizeKeyword(ev_.text);
      for (const auto& k : settings_.handoff_keywords) {
        if (NormalizeKeyword(k) != word) continue;
        // The customer asks for a person: the run stays where it is, for an agent to release to.
        Say("reply", settings_.handoff_reply);
        HandOff(settings_.handoff_sink, "keyword", "keyword");
        t_.note = "handoff_keyword";
        return;
      }
    }
    const Flow* flow = s_.flow.empty() ? nullptr : flows_.Find(s_.flow);
    const Step* step = flow ? flow->Find(s_.step) : nullptr;
    if (!s_.flow.empty() && !step) {
      // The flow (or its step) is no longer configured: the run cannot go on.
      Reset();
      t_.note = "flow_unavailable";
    }
    if (!step && !s_.closed_note.empty()) {
      // The first message after the manager cancelled this person's checklist.
      Say("reply", s_.closed_note);
      s_.closed_note.clear();
      t_.note = "assignment_closed";
      return;
    }
    if (!step) return Route();
    flow_ = flow;
    // A photo sent in the same second as the update that closed its photo step still belongs there.
    bool same_second_photo = ev_.kind == Event::Kind::kMedia && at_ == s_.entered_at;
    if (at_ < s_.entered_at || same_second_photo) return Late(*step);
    if (IsText() && flow->triggers.empty() && !flow->assigned && Trigger()) {
      // A flow started by default (an enquiry) gives way to one the person asks for by name.
      t_.note = "switched";
      return Route();
    }
    if (IsText() && !flow->cancel_keyword.empty() &&
        NormalizeKeyword(ev_.text) == flow->cancel_keyword) {
      Say("reply", flow->cancel_reply);
      Reset();
      t_.note = "cancelled";
      return;
    }
    Current(*step);
  }

  void Internal() {
    const Flow* flow = s_.flow.empty() ? nullptr : flows_.Find(s_.flow);
    t_.note = "recorded";
    if (ev_.kind == Event::Kind::kRunExpired) return Expired(flow);
    if (ev_.kind == Event::Kind::kResultDue && ev_.result_id.rfind(kExtractDue, 0) == 0)
      return ExtractDue(flow);
    if (ev_.kind == Event::Kind::kResultDue) return ResultDue();
    if (ev_.kind == Event::Kind::kExtracted) return Extracted(flow);
    if (ev_.kind == Event::Kind::kAssignmentStarted) return AssignmentStarted();
    if (ev_.kind == Event::Kind::kAssignmentEnded) return AssignmentEnded(flow);
    if (ev_.kind == Event::Kind::kSendFailed) return SendFailed(flow);
    if (ev_.media_id.empty()) return;
    if (ev_.kind == Event::Kind::kMediaStored || ev_.kind == Event::Kind::kMediaFailed)
      ResultPhoto();
    auto pending = s_.pending_uploads.find(ev_.media_id);
    if (pending != s_.pending_uploads.end() &&
        (ev_.kind == Event::Kind::kMediaStored || ev_.kind == Event::Kind::kMediaFailed)) {
      // A photo of an already delivered run: stored now, so it goes where the run's others went.
      if (ev_.kind == Event::Kind::kMediaStored) {
        Effect u;
        u.kind = Effect::Kind::kUploadMedia;
        u.step = "upload:late:" + ev_.media_id;
        u.stored_name = ev_.stored_name;
        u.destination = pending->second;
        t_.effects.push_back(std::move(u));
      }
      if (t_.note == "recorded")
        t_.note = ev_.kind == Event::Kind::kMediaStored ? "late_upload" : "late_media_failed";
      s_.pending_uploads.erase(pending);
      return;
    }
    for (auto& [field, list] : s_.photos) {
      auto it = std::find_if(list.begin(), list.end(),
                             [&](const Photo& p) { return p.media_id == ev_.media_id; });
      if (it == list.end()) continue;
      if (ev_.kind == Event::Kind::kMediaStored) {
        Stored(*it);
        t_.note = "media_stored";
      } else if (ev_.kind == Event::Kind::kMediaFailed) {
        // A photo that cannot be stored does not count: the count shown stays exact. The user
        // hears it in plain words; the technical reason stays in media's log and the event.
        const std::string kind = it->kind;
        list.erase(it);
        flow_ = flow;
        if (ev_.code == "over_quota") {
          Say("reply", "You've sent the most photos we can take today. Please try again tomorrow.");
          t_.note = "media_over_quota";
        } else {
          Say("reply", PhotoFailedText(ev_.code, Accepts(flow, kind), kind));
          t_.note = "media_failed";
        }
      }
      return;
    }
    // A photo of a run on hold for a checklist (or of one its timeout ended): recorded there, so it
    // is stored (or gone) when the run resumes. A failed one is dropped from the count; the person,
    // busy with the checklist, hears the count again when the run asks for photos.
    if (ev_.kind != Event::Kind::kMediaStored && ev_.kind != Event::Kind::kMediaFailed) return;
    for (std::string* kept : {&s_.set_aside, &s_.expired_run}) {
      if (kept->empty()) continue;
      ConversationState run = DecodeState(*kept);
      for (auto& [field, list] : run.photos) {
        auto it = std::find_if(list.begin(), list.end(),
                               [&](const Photo& p) { return p.media_id == ev_.media_id; });
        if (it == list.end()) continue;
        if (ev_.kind == Event::Kind::kMediaStored) {
          Stored(*it);
        } else {
          list.erase(it);
        }
        *kept = EncodeState(run);
        t_.note =
            ev_.kind == Event::Kind::kMediaStored ? "media_stored_on_hold" : "media_failed_on_hold";
        return;
      }
    }
  }

 private:
  // --- results on their way to a sink ---

  // Whether the step the person is on still takes media of this kind: only then are they asked to
  // send it again.
  bool Accepts(const Flow* flow, const std::string& kind) const {
    const Step* step = flow && s_.flow == flow->name ? flow->Find(s_.step) : nullptr;
    if (!step || !step->Accepts(kind)) return false;
    if (step->kind == Step::Kind::kCollectPhotos) return true;
    const auto& a = s_.assignment;
    return step->kind == Step::Kind::kChecklist && a.index < a.questions.size() &&
           a.questions[a.index].photo != "none";
  }

  // The inbound media's kind: Meta's message type (an image when none is named).
  std::string MediaKind() const { return ev_.message_type.empty() ? "image" : ev_.message_type; }
  // The inbound message is media the step takes like a photo.
  bool Attachment(const Step& step) const {
    return ev_.kind == Event::Kind::kMedia && step.Accepts(MediaKind());
  }

  // media.stored for one of ours: its name, and the type media verified.
  void Stored(Photo& p) const {
    p.stored_name = ev_.stored_name;
    if (!ev_.mime_type.empty()) p.mime_type = ev_.mime_type;
  }

  static bool Resolved(const Photo& p) { return !p.stored_name.empty() || !p.missing.empty(); }

  static bool Ready(const PendingResult& r) {
    for (const auto& [field, list] : r.photos) {
      for (const auto& p : list) {
        if (!Resolved(p)) return false;
      }
    }
    return true;
  }

  void Deliver(const PendingResult& r) {
    Effect e;
    e.kind = Effect::Kind::kDeliver;
    e.step = "deliver:" + std::to_string(t_.effects.size());
    e.result = r;
    t_.effects.push_back(std::move(e));
  }

  // Into human hands: the owner changes with this transition, and the sink hears of it once
  // (conversation.handoff_requested, its transcript added by the processor).
  // `type`: the result's type in the sink's body (a handoff step's `result`, e.g. lead.qualified:
  // one body that is both the result and the request), else conversation.handoff_requested.
  void HandOff(const std::string& sink, const std::string& outcome, const std::string& reason,
               const std::string& type = "") {
    Effect h;
    h.kind = Effect::Kind::kHandoff;
    h.step = "handoff";
    h.destination = sink;
    h.text = reason;
    t_.effects.push_back(std::move(h));
    PendingResult r;
    r.id = ev_.id + ":handoff";
    r.sink = sink;
    r.type = type.empty() ? "conversation.handoff_requested" : type;
    r.flow = s_.flow.empty() ? "conversation" : s_.flow;
    r.outcome = outcome;
    r.completed_at = at_;
    r.fields = s_.fields;
    Deliver(r);
  }

  void RemindAt(const PendingResult& r) {
    Effect e;
    e.kind = Effect::Kind::kResultDue;
    e.step = "due:" + std::to_string(t_.effects.size());
    e.result.id = r.id;
    e.delay_ms = std::max<int64_t>(0, r.due_at - at_) * 1000;
    t_.effects.push_back(std::move(e));
  }

  // A photo of a waiting result is stored (or failed): the result goes once none is left.
  void ResultPhoto() {
    for (auto r = s_.results.begin(); r != s_.results.end();) {
      bool touched = false;
      for (auto& [field, list] : r->photos) {
        for (auto& p : list) {
          if (p.media_id != ev_.media_id || Resolved(p)) continue;
          if (ev_.kind == Event::Kind::kMediaStored) {
            Stored(p);
          } else {
            p.missing = "could not be stored: " + Clip(ev_.reason, kQuoteLimit);
          }
          touched = true;
        }
      }
      if (touched && Ready(*r)) {
        Deliver(*r);
        t_.note = "result_ready";
        r = s_.results.erase(r);
      } else {
        ++r;
      }
    }
  }

  // The wait for a result's photos is over: it goes now, those not stored named as missing.
  void ResultDue() {
    auto r = std::find_if(s_.results.begin(), s_.results.end(),
                          [&](const PendingResult& x) { return x.id == ev_.result_id; });
    if (r == s_.results.end()) return;  // delivered when its last photo came back
    if (at_ < r->due_at) {
      RemindAt(*r);  // the delay queue brought it back early (its tier is shorter than the wait)
      t_.note = "result_waiting";
      return;
    }
    for (auto& [field, list] : r->photos) {
      for (auto& p : list) {
        if (!Resolved(p)) {
          p.missing = "not stored within " + std::to_string(settings_.result_photo_wait_seconds) +
                      " s of submission";
        }
      }
    }
    Deliver(*r);
    t_.note = "result_due";
    s_.results.erase(r);
  }

  // --- a run's inactivity timeout ---

  // The run went too long without a message from the person. Nothing is said to them (outside the
  // 24-hour window only a template may go, and they are not there): flow.expired tells the
  // business, and the run ends, so their next message is routed as if no flow ran — or, for a
  // flow that resumes, stays where it was and their next message answers its step. Results,
  // uploads and a run set aside for a checklist are kept, as at any end of a run.
  void Expired(const Flow* flow) {
    if (s_.flow.empty() || (flow && flow->assigned))
      return;  // ended meanwhile; a checklist ends by its assignment
    Effect e;
    e.kind = Effect::Kind::kFlowExpired;
    e.step = "flow_expired";
    e.flow = s_.flow;
    e.outcome = s_.step;
    e.last_activity_at = s_.last_inbound_at;
    e.resumed = flow && flow->resume_on_timeout;
    const bool resumed = e.resumed;
    t_.effects.push_back(std::move(e));
    if (resumed) {
      t_.note = "expired_kept";
      return;
    }
    std::string run = RunJson();
    Reset();
    s_.expired_run = std::move(run);
    s_.expired_due = ev_.due_at > 0 ? ev_.due_at : at_;
    t_.note = "expired";
  }

  // --- the flow's extractor (an AI endpoint, through outbound) ---

  static constexpr const char* kExtractDue = "extract:";

  // The rules found nothing in this answer: the flow's extractor is asked for every field still
  // missing, and the step waits for its answer (an event) — at most extractor_timeout_seconds, by a
  // reminder through the delay queues, after which the person is asked again.
  bool AskExtractor() {
    if (!flow_ || flow_->extractor.empty() || !IsText()) return false;
    Effect e;
    e.kind = Effect::Kind::kExtract;
    e.step = "extract";
    e.extractor = flow_->extractor;
    e.text = Clip(ev_.text, kTextLimit);
    e.result.id = ev_.id;
    auto want = [&](const std::string& field, const std::string& label,
                    std::vector<std::string> values) {
      if (field.empty() || s_.fields.count(field)) return;
      for (const auto& f : e.extract) {
        if (f.name == field) return;
      }
      e.extract.push_back({field, label.empty() ? field : label, std::move(values)});
    };
    for (const auto& step : flow_->steps) {
      if (step.kind == Step::Kind::kDetect) {
        std::vector<std::string> values;
        for (const auto& kw : step.own.keywords) {
          if (std::find(values.begin(), values.end(), kw.second) == values.end())
            values.push_back(kw.second);
        }
        want(step.field, step.label, values);
      } else if (step.kind == Step::Kind::kAskText) {
        want(step.field, step.label, {});
        for (const auto& r : step.extract) want(r.field, r.label, {});
      }
    }
    if (e.extract.empty()) return false;
    s_.extracting = ev_.id;
    s_.extracting_at = at_;
    t_.effects.push_back(std::move(e));
    Effect due;
    due.kind = Effect::Kind::kResultDue;
    due.step = "extract_due";
    due.result.id = kExtractDue + ev_.id;
    due.delay_ms = (settings_.extractor_timeout_seconds + 5) *
                   1000;  // outbound answers by the deadline; this is the backstop
    t_.effects.push_back(std::move(due));
    t_.note = "extracting";
    return true;
  }

  // An extracted value as the step (or rule) that owns the field would take it: "" if not.
  std::string Accept(const std::string& field, const std::string& value) const {
    for (const auto& step : flow_->steps) {
      if (step.kind == Step::Kind::kDetect && step.field == field) {
        const std::string lower = Lower(value);
        for (const auto& [phrase, canonical] : step.own.keywords) {
          if (Lower(canonical) == lower || phrase == lower) return canonical;
        }
        return "";
      }
      if (step.kind == Step::Kind::kAskText && step.field == field)
        return Taken(step.validate, value);
      for (const auto& r : step.extract) {
        if (r.field == field) return Taken(r.validate, value);
      }
    }
    return "";
  }

  void Extracted(const Flow* flow) {
    if (s_.extracting.empty() || s_.extracting != ev_.result_id || !flow) {
      t_.note = "stale_extraction";  // answered after the person wrote again, or after the timeout
      return;
    }
    flow_ = flow;
    for (const auto& [field, value] : ev_.fields) {
      if (s_.fields.count(field)) continue;  // rules (or the person) said it: never overwritten
      std::string v = Accept(field, value);
      if (!v.empty()) s_.fields[field] = v;
    }
    ExtractionOver(ev_.reason);
  }

  void ExtractDue(const Flow* flow) {
    if (s_.extracting.empty() || kExtractDue + s_.extracting != ev_.result_id || !flow) return;
    flow_ = flow;
    ExtractionOver("no answer within " + std::to_string(settings_.extractor_timeout_seconds) +
                   " s");
  }

  // The step goes on with what is known now; what is still missing is asked of the person. As of
  // the message the extraction was about (WhatsApp's clock, not this server's): the person's next
  // message is never older than the step it answers.
  void ExtractionOver(const std::string& failure) {
    if (s_.extracting_at > 0) at_ = s_.extracting_at;
    s_.extracting.clear();
    s_.extracting_at = 0;
    const Step* step = flow_->Find(s_.step);
    if (!step) return;
    if (s_.fields.count(step->field)) {
      t_.note = "extracted";
      return AskMissing(*step);
    }
    const char* why = failure.empty() ? "extractor_found_nothing" : "extractor_failed";
    if (step->kind == Step::Kind::kDetect) {
      Missed(*step);
      if (t_.note == "not_understood") t_.note = why;  // a handoff keeps its own note
      return;
    }
    t_.note = why;
    Say("reply", step->invalid.empty() ? Render(step->prompt, step) : step->invalid);
  }

  // --- checklists (a flow with `assignment`) ---

  static constexpr int64_t kWindow = 24 * 3600;

  // Inside Meta's 24-hour window: a plain message may go (a minute kept in hand).
  bool InWindow() const {
    return s_.last_inbound_at > 0 && at_ - s_.last_inbound_at < kWindow - 60;
  }

  static std::string Fill(const std::string& tmpl, const std::map<std::string, std::string>& vars) {
    std::string out = tmpl;
    for (const auto& [k, v] : vars) {
      const std::string key = "{" + k + "}";
      for (size_t at = out.find(key); at != std::string::npos; at = out.find(key, at + v.size()))
        out.replace(at, key.size(), v);
    }
    return out;
  }

  std::map<std::string, std::string> Vars() const {
    const auto& a = s_.assignment;
    std::string answers;
    if (a.index < a.questions.size()) {
      for (const auto& x : a.questions[a.index].answers)
        answers += (answers.empty() ? "" : ", ") + x;
    }
    return {{"index", std::to_string(a.index + 1)},
            {"count", std::to_string(a.questions.size())},
            {"question", a.index < a.questions.size() ? a.questions[a.index].text : ""},
            {"answers", answers},
            {"title", a.title},
            {"operator", a.operator_name.empty() ? "there" : a.operator_name}};
  }

  // "Question i of N", with the allowed answers as buttons when there are at most three.
  // `lead` goes in the same message (one message: one notification on the operator's phone).
  void Ask(const Step& step, const std::string& lead = "") {
    const auto& a = s_.assignment;
    const Question& q = a.questions[a.index];
    std::string text = Fill(step.prompt, Vars());
    if (!lead.empty()) text = lead + "\n\n" + text;
    if (!q.answers.empty() && q.answers.size() <= 3) {
      Effect e;
      e.kind = Effect::Kind::kSendButtons;
      e.step = "reply";
      e.text = Clip(text, kButtonBodyLimit);
      for (size_t i = 0; i < q.answers.size(); ++i)
        e.buttons.emplace_back("answer_" + std::to_string(i + 1), Clip(q.answers[i], 20));
      t_.effects.push_back(std::move(e));
      return;
    }
    if (!q.answers.empty()) text += "\n(" + Vars()["answers"] + ")";
    Say("reply", text);
  }

  // Question i, answered: fields "q<i>" (and its note, "q<i>_note"; its photos, "q<i>"), then the
  // next or the summary. With fixed answers the text is the answer and, after it, its note ("NOT
  // OK - guard cracked"); an answer the checklist wants a note for and that came without one waits
  // for it (the next text is its note).
  void Answer(const Step& step, const std::string& text) {
    auto& a = s_.assignment;
    const Question& q = a.questions[a.index];
    std::string value = text, note;
    if (!q.answers.empty()) {
      TypedAnswer typed = ParseTypedAnswer(q.answers, text);
      if (typed.answer.empty() && !a.pending_answer.empty()) typed = {a.pending_answer, Trim(text)};
      if (typed.answer.empty()) {
        Say("reply", Fill(step.invalid, Vars()));
        t_.note = "reprompted";
        return;
      }
      value = typed.answer;
      note = typed.note;
      if (note.empty() && std::find(q.note_required.begin(), q.note_required.end(), value) !=
                              q.note_required.end()) {
        a.pending_answer = value;
        auto vars = Vars();
        vars["answer"] = value;
        Say("reply",
            Fill(step.note_required.empty() ? kDefaultNoteRequired : step.note_required, vars));
        t_.note = "note_requested";
        return;
      }
    }
    const std::string field = "q" + std::to_string(a.index + 1);
    s_.fields[field] = Clip(value, kTextLimit);
    if (note.empty()) {
      s_.fields.erase(field + "_note");
    } else {
      s_.fields[field + "_note"] = Clip(note, kTextLimit);
    }
    a.pending_photo.clear();
    a.pending_answer.clear();
    a.answered_at = at_;
    ++a.index;
    t_.note = "answered";
    if (a.index < a.questions.size()) return Ask(step);
    Enter(step.next);
  }

  void Checklist(const Step& step) {
    auto& a = s_.assignment;
    if (!a.asked) {
      // The operator's reply to the template (a tap or anything): the first question (and, when a
      // run was put on hold for it, a word about that).
      a.asked = true;
      t_.note = "checklist_opened";
      return Ask(step, OnHoldNotice());
    }
    if (a.index >= a.questions.size()) return Route();
    if (a.answered_at > 0 && at_ <= a.answered_at) {
      // Sent before this question was asked: a second answer to a question already answered.
      t_.note = "superseded";
      return;
    }
    const Question& q = a.questions[a.index];
    const std::string field = "q" + std::to_string(a.index + 1);
    if (Attachment(step)) {
      Added added = AddPhoto(field, step);
      if (added == Added::kDuplicate) t_.note = "duplicate_photo";
      if (added != Added::kYes) return;
      std::string caption = ev_.text;
      while (!caption.empty() && std::isspace(static_cast<unsigned char>(caption.back())))
        caption.pop_back();
      a.pending_photo = ev_.media_id;  // kept if the caption is not an answer: the next text may be
      if (caption.empty()) {
        Say("reply", Fill(step.photo_pending, Vars()));
        t_.note = "photo_pending";
        return;
      }
      return Answer(step, caption);
    }
    if (!IsText()) {
      Say("reply", Fill(q.photo == "required" ? step.photo_required : step.invalid, Vars()));
      t_.note = "reprompted";
      return;
    }
    if (a.pending_photo.empty() && q.photo == "required") {
      Say("reply", Fill(step.photo_required, Vars()));
      t_.note = "photo_required";
      return;
    }
    Answer(step, ev_.text);
  }

  std::string ChecklistSummary() const {
    const auto& a = s_.assignment;
    std::string out;
    for (size_t i = 0; i < a.questions.size(); ++i) {
      const std::string field = "q" + std::to_string(i + 1);
      auto it = s_.fields.find(field);
      auto note = s_.fields.find(field + "_note");
      auto photos = s_.photos.find(field);
      size_t n = photos == s_.photos.end() ? 0 : photos->second.size();
      // "photos" while they are all photos, "files" once a document (or other media) is among them.
      const bool all_photos =
          n == 0 || std::all_of(photos->second.begin(), photos->second.end(),
                                [](const Photo& p) { return p.kind == "image"; });
      const std::string noun =
          all_photos ? (n == 1 ? " photo)" : " photos)") : (n == 1 ? " file)" : " files)");
      out += std::to_string(i + 1) + ". " + Clip(a.questions[i].text, kQuoteLimit) + ": " +
             Clip(it == s_.fields.end() ? "" : it->second, kSummaryValueLimit) +
             (note == s_.fields.end() ? "" : " — " + Clip(note->second, kSummaryValueLimit)) +
             (n ? " (" + std::to_string(n) + noun : "") + "\n";
    }
    if (!out.empty()) out.pop_back();
    return out;
  }

  void Confirm(const Step& step) {
    if (IsText() && NormalizeKeyword(ev_.text) == step.confirm_keyword) {
      t_.note = "confirmed";
      return Enter(step.next);
    }
    Say("reply", step.invalid);
    t_.note = "reprompted";
  }

  void AssignmentStarted() {
    const Flow* flow = flows_.Find(ev_.assignment.flow);
    if (!flow || !flow->assigned || ev_.assignment.questions.empty()) {
      t_.note = "assignment_flow_unavailable";
      return;
    }
    const Step* step = flow->Find(flow->start);
    if (!step || step->kind != Step::Kind::kChecklist) {
      t_.note = "assignment_flow_unavailable";
      return;
    }
    // A listing or lead in progress is put on hold, not lost: it resumes after the checklist.
    const Flow* interrupted = s_.flow.empty() ? nullptr : flows_.Find(s_.flow);
    if (interrupted && !interrupted->assigned) SetAside();
    Reset();
    flow_ = flow;
    s_.flow = flow->name;
    s_.step = step->id;
    s_.history.emplace_back(step->id, at_);
    s_.assignment = ev_.assignment;
    s_.assignment.index = 0;
    s_.assignment.asked = false;
    s_.closed_note.clear();
    s_.fields["assignment_id"] = s_.assignment.id;
    s_.fields["reference"] = s_.assignment.reference;
    s_.fields["checklist"] = s_.assignment.title;
    t_.note = "assignment_started";
    const auto vars = Vars();
    if (InWindow() || flow->assignment.template_name.empty()) {
      s_.assignment.asked = true;
      const std::string hold = OnHoldNotice();
      return Ask(*step, Fill(flow->assignment.intro, vars) + (hold.empty() ? "" : "\n\n" + hold));
    }
    // Outside the window only an approved template may open the conversation; the operator's
    // reply brings the first question.
    Effect e;
    e.kind = Effect::Kind::kSendTemplate;
    e.step = "template";
    e.template_name = flow->assignment.template_name;
    e.template_language = !ev_.number_templates_language.empty()
                              ? ev_.number_templates_language
                              : flow->assignment.template_language;
    e.template_params = {vars.at("operator"), vars.at("title"), vars.at("count")};
    t_.effects.push_back(std::move(e));
  }

  void AssignmentEnded(const Flow* flow) {
    if (s_.assignment.id.empty() || s_.assignment.id != ev_.assignment.id)
      return;  // not (or no longer) running
    const bool cancelled = ev_.reason == "cancelled";
    std::string say, closed;
    if (flow) {
      say = cancelled ? flow->assignment.cancelled : flow->assignment.expired;
      closed = cancelled ? flow->assignment.closed : "";
    }
    flow_ = flow;
    if (!say.empty() && InWindow()) Say("reply", Fill(say, Vars()));
    Reset();
    s_.closed_note = closed;
    t_.note = cancelled ? "assignment_cancelled" : "assignment_expired";
  }

  // The template that opens an assignment outside the window did not reach the operator (rejected,
  // not approved, a number that cannot receive): the checklist cannot run. The assignment becomes
  // undeliverable with the reason, the manager's system hears it at the flow's sink, and the run
  // ends (a run it set aside resumes). Any other failed send changes nothing here.
  void SendFailed(const Flow* flow) {
    // The template of this assignment, not a late failure of an earlier one's (a cancelled
    // assignment's template may fail after the next one started): its key names the assignment.
    const std::string tail = ":template";
    const std::string& key = ev_.command_key;
    if (!flow || !flow->assigned || s_.assignment.id.empty() || s_.assignment.asked ||
        key.size() < tail.size() || key.compare(key.size() - tail.size(), tail.size(), tail) != 0 ||
        key.find(":assignment.started:" + s_.assignment.id) == std::string::npos) {
      return;
    }
    flow_ = flow;
    const std::string why = "the " + flow->assignment.template_name +
                            " template did not reach the operator" +
                            (ev_.code.empty() ? "" : " (" + ev_.code + ")") +
                            (ev_.reason.empty() ? "" : ": " + ev_.reason);
    Effect e;
    e.kind = Effect::Kind::kAssignmentUndeliverable;
    e.step = "assignment_undeliverable";
    e.assignment_id = s_.assignment.id;
    e.text = why;
    // What the business is told, at the flow's sink: the processor writes it only if the
    // assignment did move (written beside the move, as the effect's result).
    for (const Step& step : flow->steps) {
      if (step.kind != Step::Kind::kComplete || !step.deliver || step.sink.empty()) continue;
      PendingResult r;
      r.id = ev_.id + ":undeliverable";
      r.sink = step.sink;
      r.type = "checklist.undeliverable";  // the sink body's schema:
                                           // proto-schemas/checklist.undeliverable.v1.json
      r.flow = flow->name;
      r.outcome = "undeliverable";
      r.completed_at = at_;
      r.fields = {{"assignment_id", s_.assignment.id},
                  {"reference", s_.assignment.reference},
                  {"checklist", s_.assignment.title},
                  {"reason", why}};
      e.result = std::move(r);
      break;
    }
    t_.effects.push_back(std::move(e));
    Reset();
    t_.note = "assignment_undeliverable";
  }

  bool IsText() const { return ev_.kind == Event::Kind::kText || ev_.kind == Event::Kind::kButton; }

  void Say(const std::string& name, const std::string& text) {
    Effect e;
    e.kind = Effect::Kind::kSendText;
    e.step = name;
    e.text = Clip(text, kTextLimit);
    t_.effects.push_back(std::move(e));
  }

  void SayButtons(const std::string& name, const std::string& text, const Step& step) {
    Effect e;
    e.kind = Effect::Kind::kSendButtons;
    e.step = name;
    e.text = Clip(text, kButtonBodyLimit);
    for (const auto& b : step.buttons) e.buttons.emplace_back(b.id, b.title);
    t_.effects.push_back(std::move(e));
  }

  // {field} -> the field's value or a photo field's count; {field:photo:photos} -> "1 photo",
  // "3 photos"; {summary} -> the step's summary lines.
  std::string Render(const std::string& tmpl, const Step* step) const {
    std::string out;
    for (size_t i = 0; i < tmpl.size(); ++i) {
      size_t close = tmpl[i] == '{' ? tmpl.find('}', i) : std::string::npos;
      std::string name = close == std::string::npos ? "" : tmpl.substr(i + 1, close - i - 1);
      std::string one, many;
      auto colon = name.find(':');
      if (colon != std::string::npos) {
        auto second = name.find(':', colon + 1);
        if (second != std::string::npos) {
          one = name.substr(colon + 1, second - colon - 1);
          many = name.substr(second + 1);
        }
        name = name.substr(0, colon);
      }
      bool ident = !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
        return std::islower(static_cast<unsigned char>(c)) ||
               std::isdigit(static_cast<unsigned char>(c)) || c == '_';
      });
      if (!ident || (colon != std::string::npos && many.empty())) {
        out += tmpl[i];
        continue;
      }
      if (!many.empty()) {
        std::string n = Value(name);
        out += n + " " + (n == "1" ? one : many);
      } else if (name == "summary" && step) {
        for (const auto& field : step->summary) {
          std::string v = Value(field);
          if (!v.empty()) out += flow_->Label(field) + ": " + Clip(v, kSummaryValueLimit) + "\n";
        }
        if (!out.empty() && out.back() == '\n') out.pop_back();
      } else {
        out += Value(name);
      }
      i = close;
    }
    return out;
  }

  std::string Value(const std::string& field) const {
    if (flow_ && flow_->IsPhotoField(field)) {
      auto it = s_.photos.find(field);
      return std::to_string(it == s_.photos.end() ? 0 : it->second.size());
    }
    auto it = s_.fields.find(field);
    return it == s_.fields.end() ? "" : it->second;
  }

  // The step's question, as it is asked on entering it (and again after a wrong answer).
  void Prompt(const Step& step, const std::string& lead) {
    std::string text = step.kind == Step::Kind::kConfirm
                           ? Fill(step.prompt, {{"summary", ChecklistSummary()}})
                           : Render(step.prompt, &step);
    if (!lead.empty()) text = lead + "\n" + text;
    if (step.kind == Step::Kind::kButtons || step.kind == Step::Kind::kSummary) {
      SayButtons("reply", text, step);
    } else {
      Say("reply", text);
    }
  }

  void Enter(const std::string& id) {
    const Step* step = flow_->Find(id);
    s_.step = id;
    s_.asking.clear();
    s_.entered_at = at_;
    s_.history.emplace_back(id, at_);
    s_.misses = 0;
    if ((step->kind == Step::Kind::kAskText || step->kind == Step::Kind::kDetect) &&
        s_.fields.count(step->field)) {
      return AskMissing(*step);  // already said (in the message that started the flow, or earlier)
    }
    if (step->kind != Step::Kind::kComplete) return Prompt(*step, "");
    Say("reply", Render(step->prompt, step));
    if (step->deliver) {
      Effect e;
      e.kind = Effect::Kind::kFlowCompleted;
      e.step = "completed";
      e.flow = flow_->name;
      e.outcome = step->id;
      e.fields = s_.fields;
      e.photos = s_.photos;
      t_.effects.push_back(std::move(e));
      if (step->hands_off) {
        // The conversation, not a result, goes to the sink: its transcript carries the photos.
        HandOff(step->sink, step->id, step->id, step->result_type);
      } else if (!step->sink.empty()) {
        PendingResult r;
        r.id = ev_.id + ":completed";  // the flow.completed event's dedupe key
        r.sink = step->sink;
        r.type = step->result_type.empty() ? flow_->name + "." + step->id : step->result_type;
        r.flow = flow_->name;
        r.outcome = step->id;
        r.completed_at = at_;
        r.due_at = at_ + settings_.result_photo_wait_seconds;
        r.fields = s_.fields;
        r.photos = s_.photos;
        if (Ready(r)) {
          Deliver(r);
        } else {
          RemindAt(r);
          s_.results.push_back(std::move(r));
        }
      }
      // Every stored photo goes to the destination named after the flow (convoy-media's
      // --upload_destinations); one still being fetched is in flow.completed without a stored name.
      for (const auto& [field, list] : s_.photos) {
        for (size_t i = 0; i < list.size(); ++i) {
          if (list[i].stored_name.empty()) {
            s_.pending_uploads[list[i].media_id] = flow_->name;  // uploaded when it is stored
            continue;
          }
          Effect u;
          u.kind = Effect::Kind::kUploadMedia;
          u.step = "upload:" + field + ":" + std::to_string(i);
          u.stored_name = list[i].stored_name;
          u.destination = flow_->name;
          t_.effects.push_back(std::move(u));
        }
      }
    }
    if (flow_->assigned && !s_.assignment.id.empty()) {
      Effect done;
      done.kind = Effect::Kind::kAssignmentDone;
      done.step = "assignment_done";
      done.assignment_id = s_.assignment.id;
      done.fields = s_.fields;
      done.photos = s_.photos;
      t_.effects.push_back(std::move(done));
    }
    Reset();
    t_.note = step->deliver ? "completed" : "ended";
  }

  void Reset() {
    int64_t messages = s_.messages, last = s_.last_inbound_at;
    const bool greeted = s_.greeted;
    auto pending = std::move(s_.pending_uploads);
    auto results = std::move(s_.results);
    auto set_aside = std::move(s_.set_aside);
    s_ = ConversationState{};
    s_.set_aside = std::move(set_aside);
    s_.greeted = greeted;
    s_.messages = messages;
    s_.last_inbound_at = last;
    s_.pending_uploads = std::move(pending);
    s_.results = std::move(results);
    s_.entered_at = at_;
  }

  // The flow a person gets for `flow` while it is rolled out: it, its fallback (if the number runs
  // it), or nullptr (the menu).
  const Flow* ForPerson(const Flow* flow) {
    if (!flow || flow->RolledOutTo(ev_.person, ev_.ids)) return flow;
    rolled_back_ = true;
    return flow->fallback.empty() ? nullptr : Runs(flows_.Find(flow->fallback));
  }

  // `flow` when the number runs it (the registry's `flows`; none named: every flow), else nullptr.
  const Flow* Runs(const Flow* flow) const {
    const auto& only = ev_.number_flows;
    return flow && (only.empty() || std::find(only.begin(), only.end(), flow->name) != only.end())
               ? flow
               : nullptr;
  }

  // The flow the text's trigger starts on this number, or nullptr: another flow's trigger does not
  // fire on a number that does not run it.
  const Flow* Trigger() const { return Runs(flows_.ForTrigger(ev_.text)); }

  void Start(const Flow* flow, bool opening) {
    Reset();
    s_.flow = flow->name;
    flow_ = flow;
    t_.note = rolled_back_ ? "started_fallback" : "started";
    if (opening && IsText()) {
      // The message that started the flow may already say what a step asks for.
      s_.fields["first_message"] = Clip(ev_.text, kTextLimit);
      Prefill(ev_.text);
    }
    Enter(flow->start);
  }

  void Route() {
    if (IsText()) {
      if (const Flow* trigger = Trigger()) {
        if (const Flow* flow = ForPerson(trigger)) return Start(flow, flow != trigger);
      }
    }
    // The number's default flow, else the deployment's if the number runs it (never one an
    // assignment starts).
    const Flow* def =
        ev_.number_default_flow.empty() ? nullptr : Runs(flows_.Find(ev_.number_default_flow));
    if (def && def->assigned) def = nullptr;
    if (!def && !settings_.default_flow.empty()) def = Runs(flows_.Find(settings_.default_flow));
    if (!rolled_back_ && def && !def->assigned) {
      if (const Flow* flow = ForPerson(def)) return Start(flow, true);
    }
    std::string hi = ev_.profile_name.empty() ? "Hi!" : "Hi " + ev_.profile_name + "!";
    const std::string menu = flows_.Menu(ev_.number_flows);  // "" on a number that offers none
    const std::string said =
        IsText() ? hi + " I can't help with \"" + Clip(ev_.text, kQuoteLimit) + "\" yet." : hi;
    Say("reply", menu.empty() ? said : said + " " + menu);
    t_.note = rolled_back_ ? "menu_not_rolled_out" : "menu";
  }

  // Fields of the flow's steps that a text already gives (by their patterns and keywords, never
  // the whole text): the steps that ask for them are skipped.
  void Prefill(const std::string& text) {
    for (const auto& step : flow_->steps) {
      if (step.kind != Step::Kind::kAskText && step.kind != Step::Kind::kDetect) continue;
      if (step.own.HasRules() && !s_.fields.count(step.field)) {
        std::string v = step.own.Find(text);
        if (!v.empty()) s_.fields[step.field] = v;
      }
      for (const auto& rule : step.extract) {
        if (!rule.HasRules() || s_.fields.count(rule.field)) continue;
        std::string v = rule.Find(text);
        if (!v.empty()) s_.fields[rule.field] = v;
      }
    }
  }

 public:
  // A flow's greeting goes with the first message the business sends in the conversation.
  // A run put on hold by a checklist comes back once no flow runs (the checklist submitted,
  // cancelled or expired): its state as it was, and its step's question again (inside the window;
  // outside it the run resumes silently and the person's next message answers it). Its photos
  // keep their times, so they expire as usual.
  void Resume() {
    if (!s_.flow.empty() || s_.set_aside.empty()) return;
    const std::string held = std::move(s_.set_aside);
    s_.set_aside.clear();
    const Step* step = Restore(held);
    if (!step) return;  // the flow changed since: nothing to go back to
    const Flow* flow = flow_;
    if (t_.note.empty() || t_.note == "recorded") t_.note = "resumed";
    if (!InWindow()) return;
    std::string question = Render(step->prompt, step);
    for (const auto& rule : step->extract) {
      if (rule.field == s_.asking) question = rule.prompt;
    }
    Say("reply", (flow->resumed.empty() ? kDefaultResumed : flow->resumed) + "\n\n" + question);
  }

  void Greet() {
    const std::string& greeting = !ev_.number_greeting.empty() ? ev_.number_greeting
                                  : flow_                      ? flow_->greeting
                                                               : "";
    if (s_.greeted || greeting.empty()) return;
    for (auto& e : t_.effects) {
      if (e.kind != Effect::Kind::kSendText && e.kind != Effect::Kind::kSendButtons) continue;
      e.text = Clip(greeting + "\n\n" + e.text,
                    e.kind == Effect::Kind::kSendText ? kTextLimit : kButtonBodyLimit);
      s_.greeted = true;
      return;
    }
  }

 private:
  void Current(const Step& step) {
    switch (step.kind) {
      case Step::Kind::kAskText:
        return AskText(step);
      case Step::Kind::kCollectPhotos:
        return CollectPhotos(step);
      case Step::Kind::kButtons:
      case Step::Kind::kSummary:
        return Buttons(step);
      case Step::Kind::kChecklist:
        return Checklist(step);
      case Step::Kind::kConfirm:
        return Confirm(step);
      case Step::Kind::kDetect:
        return Detect(step);
      case Step::Kind::kComplete:
        return Route();  // not reached: a complete step ends the run on entry
    }
  }

  void Retry(const Step& step, const std::string& why) {
    Prompt(step, why.empty() ? "Sorry, I didn't get that." : why);
    t_.note = "reprompted";
  }

  void AskText(const Step& step) {
    if (!IsText()) return Retry(step, "Please answer with a text message.");
    std::string value;
    if (!s_.asking.empty()) {
      auto rule = std::find_if(step.extract.begin(), step.extract.end(),
                               [&](const ExtractRule& r) { return r.field == s_.asking; });
      if (rule != step.extract.end()) {
        if (!Validate(rule->validate == Validation::kNone ? Validation::kNonEmpty : rule->validate,
                      ev_.text, &value)) {
          Say("reply", rule->invalid.empty() ? rule->prompt : rule->invalid);
          t_.note = "reprompted";
          return;
        }
        s_.fields[rule->field] = value;
        t_.note = "answered";
        return AskMissing(step);
      }
    }
    // The step's own patterns find the value inside the answer; else the answer is the value.
    size_t begin = 0, end = 0;
    value = step.own.HasRules() ? step.own.Find(ev_.text, &begin, &end) : "";
    std::string rest;
    if (!value.empty()) {
      rest = ev_.text.substr(0, begin) + " " + ev_.text.substr(std::min(end, ev_.text.size()));
    } else if (!Validate(step.validate, StripLeadIn(step, ev_.text), &value)) {
      if (AskExtractor()) return;
      Say("reply", step.invalid.empty() ? Render(step.prompt, &step) : step.invalid);
      t_.note = "reprompted";
      return;
    } else if (step.validate == Validation::kName && !LooksLikeAName(value)) {
      // "I want a golden visa for my wife" is letters and spaces, and no name: asked again once,
      // politely; then (with a `handoff`) a person takes over, with what was said.
      std::string& enquiry = s_.fields["enquiry"];
      enquiry = Clip(enquiry.empty() ? ev_.text : enquiry + "\n" + ev_.text, kTextLimit);
      if (!step.handoff.empty()) return Missed(step);
      Say("reply", step.invalid.empty() ? Render(step.prompt, &step) : step.invalid);
      t_.note = "not_a_name";
      return;
    }
    s_.fields[step.field] = value;
    for (const auto& rule : step.extract) {
      std::string found;
      if (rule.rest) {
        std::string v = rest;
        for (int i = 0; i < 3; ++i) v = StripLeadIn(step, v);  // "email:", "best time is", ...
        found = Taken(rule.validate, v);
      } else {
        found = rule.Find(ev_.text);
      }
      if (!found.empty()) s_.fields[rule.field] = found;
    }
    t_.note = "answered";
    AskMissing(step);
  }

  // A free value (a phrase that came with another, an extractor's answer) as a field takes it:
  // validated (any text: not empty), clipped; "" when it is not one.
  static std::string Taken(Validation validation, const std::string& text) {
    std::string v;
    if (text.empty() ||
        !Validate(validation == Validation::kNone ? Validation::kNonEmpty : validation, text, &v))
      return "";
    return Clip(v, kQuoteLimit);
  }

  // An answer taken whole, without a lead-in the step names ("my name is", "i'm").
  static std::string StripLeadIn(const Step& step, const std::string& text) {
    std::string t = TrimSeparators(text);
    const std::string lower = Lower(t);
    for (const auto& lead : step.strip) {
      if (lower.compare(0, lead.size(), lead) == 0 &&
          (lower.size() == lead.size() ||
           !std::isalnum(static_cast<unsigned char>(lower[lead.size()])))) {
        return TrimSeparators(t.substr(lead.size()));
      }
    }
    return t;
  }

  // Without the white space, punctuation and joining words around a phrase ("- and after 5pm." ->
  // "after 5pm").
  static std::string TrimSeparators(const std::string& text) {
    auto sep = [](unsigned char c) {
      return std::isspace(c) || c == ',' || c == ';' || c == ':' || c == '-' || c == '.' ||
             c == '!';
    };
    size_t b = 0, e = text.size();
    for (bool changed = true; changed;) {
      changed = false;
      while (b < e && sep(static_cast<unsigned char>(text[b]))) ++b, changed = true;
      while (e > b && sep(static_cast<unsigned char>(text[e - 1]))) --e, changed = true;
      for (const char* word : {"and ", "or ", "call me ", "call "}) {
        size_t n = std::char_traits<char>::length(word);
        if (e - b > n && Lower(text.substr(b, n)) == word) b += n, changed = true;
      }
    }
    return text.substr(b, e - b);
  }

  // A value only rules can recognise (a service): not understood -> asked in other words, and after
  // `attempts` misses a person takes over (the `handoff` step, which tells them so).
  void Detect(const Step& step) {
    if (!IsText()) return Retry(step, "Please answer with a text message.");
    std::string value = step.own.Find(ev_.text);
    if (!value.empty()) {
      s_.fields[step.field] = value;
      Prefill(ev_.text);  // "a family visa for my wife, my name is Ana" says more than the service
      t_.note = "detected";
      return AskMissing(step);
    }
    std::string& enquiry = s_.fields["enquiry"];  // what they said, for the person who takes over
    enquiry = Clip(enquiry.empty() ? ev_.text : enquiry + "\n" + ev_.text, kTextLimit);
    if (AskExtractor()) return;
    Missed(step);
  }

  // A name is a few words: not more than five, not a sentence led by a verb or a greeting, and
  // not one that names a service the flow detects ("golden visa").
  bool LooksLikeAName(const std::string& value) const {
    std::vector<std::string> words;
    std::string word;
    for (char c : value + " ") {
      if (c == ' ') {
        if (!word.empty()) words.push_back(Lower(word));
        word.clear();
      } else {
        word += c;
      }
    }
    if (words.empty() || words.size() > 5) return false;
    static const char* const kNotAName[] = {
        "i",     "i'm",   "im",     "we",    "my",   "want", "need",   "would", "like", "looking",
        "can",   "could", "please", "do",    "does", "is",   "are",    "what",  "how",  "when",
        "where", "why",   "who",    "hello", "hi",   "hey",  "thanks", "thank", "yes",  "no",
        "ok",    "okay",  "sorry",  "the",   "a",    "an",   "for",    "about", "call"};
    for (const char* w : kNotAName) {
      if (words[0] == w) return false;
    }
    const Flow* flow = flows_.Find(s_.flow);
    for (const auto& step : flow ? flow->steps : std::vector<Step>{}) {
      if (step.kind == Step::Kind::kDetect && !step.own.Find(value).empty()) return false;
    }
    return true;
  }

  void Missed(const Step& step) {
    if (++s_.misses >= step.attempts) {
      t_.note = "handoff";
      return Enter(step.handoff);
    }
    Say("reply", Render(step.invalid, &step));
    t_.note = "not_understood";
  }

  // Extracted fields the answer did not give are asked for one at a time, then the step ends.
  void AskMissing(const Step& step) {
    for (const auto& rule : step.extract) {
      if (s_.fields.count(rule.field)) continue;
      s_.asking = rule.field;
      Say("reply", rule.prompt);
      return;
    }
    Enter(step.next);
  }

  // Drops the photos older than the TTL before `ref`; how many were dropped.
  size_t Expire(std::vector<Photo>& list, int64_t ref) {
    size_t before = list.size();
    list.erase(
        std::remove_if(list.begin(), list.end(),
                       [&](const Photo& p) { return p.at < ref - settings_.photo_ttl_seconds; }),
        list.end());
    return before - list.size();
  }

  // Some of the person's photos expired and some are left: they hear it, with the count that
  // will be submitted, at this message (never silently fewer).
  void TellPartlyExpired(const Step& step, size_t kept, size_t lost) {
    const std::string text =
        step.partly_expired.empty() ? kDefaultPartlyExpired : step.partly_expired;
    Say("reply", Fill(text, {{"kept", std::to_string(kept)},
                             {"lost", std::to_string(lost)},
                             {"them", lost == 1 ? "it" : "them"}}));
  }

  // The running run's state (its step, fields, photos, history), as set_aside and expired_run keep
  // it.
  std::string RunJson() const {
    ConversationState run;
    run.flow = s_.flow;
    run.step = s_.step;
    run.asking = s_.asking;
    run.entered_at = s_.entered_at;
    run.fields = s_.fields;
    run.photos = s_.photos;
    run.acked = s_.acked;
    run.history = s_.history;
    run.misses = s_.misses;
    return EncodeState(run);
  }

  void SetAside() { s_.set_aside = RunJson(); }

  // A kept run (RunJson) back where it was: its step, or nullptr (nothing changed) when its flow or
  // step is no longer configured.
  const Step* Restore(const std::string& json) {
    ConversationState run = DecodeState(json);
    const Flow* flow = flows_.Find(run.flow);
    const Step* step = flow ? flow->Find(run.step) : nullptr;
    if (!step) return nullptr;
    s_.flow = run.flow;
    s_.step = run.step;
    s_.asking = run.asking;
    s_.entered_at = run.entered_at;
    s_.fields = std::move(run.fields);
    s_.photos = std::move(run.photos);
    s_.acked = std::move(run.acked);
    s_.history = std::move(run.history);
    s_.misses = run.misses;
    flow_ = flow;
    return step;
  }

  // What the person hears about a run put on hold for the checklist ("" when none was).
  std::string OnHoldNotice() const {
    if (s_.set_aside.empty()) return "";
    const Flow* held = flows_.Find(DecodeState(s_.set_aside).flow);
    return held && !held->on_hold.empty() ? held->on_hold : kDefaultOnHold;
  }

  void Acked(const std::string& field, bool value) {
    auto it = std::find(s_.acked.begin(), s_.acked.end(), field);
    if (value && it == s_.acked.end()) s_.acked.push_back(field);
    if (!value && it != s_.acked.end()) s_.acked.erase(it);
  }

  enum class Added { kYes, kDuplicate, kRunFull };
  // Adds the event's photo (or other media the step takes) to a field, unless it is there already
  // (same media id) or the run has --max_photos_per_run (then the user is told, and nothing is
  // fetched).
  Added AddPhoto(const std::string& field, const Step& step) {
    auto& list = s_.photos[field];
    for (const auto& p : list) {
      if (p.media_id == ev_.media_id) return Added::kDuplicate;
    }
    size_t in_run = 0;
    for (const auto& [f, photos] : s_.photos) in_run += photos.size();
    if (in_run >= settings_.max_photos_per_run) {
      Say("reply", "That's the most photos we can take this time (" +
                       std::to_string(settings_.max_photos_per_run) +
                       "), so this one wasn't saved.");
      t_.note = "run_photo_limit";
      return Added::kRunFull;
    }
    Photo photo(ev_.media_id, at_);
    photo.kind = MediaKind();
    photo.mime_type = ev_.mime_type;
    photo.filename = photo.kind == "document" ? SafeFileName(ev_.filename) : "";
    list.push_back(std::move(photo));
    Effect e;
    e.kind = Effect::Kind::kFetchMedia;
    e.step = "fetch";
    e.media_id = ev_.media_id;
    e.mime_type = ev_.mime_type;
    e.sha256 = ev_.sha256;
    e.keep_days = flow_ ? flow_->media_retention_days : 0;
    e.kinds = step.accepts;
    t_.effects.push_back(std::move(e));
    return Added::kYes;
  }

  void CollectPhotos(const Step& step) {
    auto& list = s_.photos[step.field];
    if (Attachment(step)) {
      if (std::any_of(list.begin(), list.end(),
                      [&](const Photo& p) { return p.media_id == ev_.media_id; })) {
        t_.note = "duplicate_photo";
        return;
      }
      if (const size_t lost = Expire(list, at_); lost > 0) {
        if (list.empty()) {
          Acked(step.field, false);
        } else {
          TellPartlyExpired(step, list.size(), lost);
        }
      }
      if (list.size() >= settings_.max_photos) {
        Say("reply", "That's the most photos one listing can take (" +
                         std::to_string(settings_.max_photos) + "). Text " + step.done_keyword +
                         " to go on.");
        t_.note = "photo_limit";
        return;
      }
      if (AddPhoto(step.field, step) != Added::kYes) return;
      t_.note = "photo";
      if (std::find(s_.acked.begin(), s_.acked.end(), step.field) == s_.acked.end()) {
        Acked(step.field, true);
        Say("reply", Render(step.first_ack, &step));
      }
      return;
    }
    if (IsText() && NormalizeKeyword(ev_.text) == step.done_keyword) {
      const size_t lost = Expire(list, at_);
      if (list.empty()) {
        Acked(step.field, false);
        Say("reply", lost > 0 ? step.expired : step.empty);
        t_.note = lost > 0 ? "photos_expired" : "no_photos";
        return;
      }
      if (lost > 0)
        TellPartlyExpired(step, list.size(), lost);  // then the next step, with the count kept
      t_.note = lost > 0 ? "done_some_expired" : "done";
      return Enter(step.next);
    }
    if ((ev_.kind == Event::Kind::kOther || ev_.kind == Event::Kind::kMedia) &&
        !step.not_a_photo.empty() && IsMediaType(ev_.message_type)) {
      Say("reply", step.not_a_photo);
      t_.note = "not_a_photo";
      return;
    }
    Say("reply", step.invalid.empty() ? Render(step.prompt, &step) : step.invalid);
    t_.note = "reprompted";
  }

  void Buttons(const Step& step) {
    for (const auto& b : step.buttons) {
      bool picked = ev_.kind == Event::Kind::kButton && ev_.button_id == b.id;
      if (!picked && IsText()) {
        std::string typed = NormalizeKeyword(ev_.text);
        picked = std::find(b.keywords.begin(), b.keywords.end(), typed) != b.keywords.end();
      }
      if (picked) {
        t_.note = "chose_" + b.id;
        return Enter(b.next);
      }
    }
    SayButtons("reply", step.invalid.empty() ? "Please tap one of the buttons." : step.invalid,
               step);
    t_.note = "reprompted";
  }

  // The event was sent before the current step was entered. A photo goes to the photo step
  // that was open when it was sent (a photo sent in the same second as DONE counts); any other
  // late update was settled by a later one and changes nothing.
  void Late(const Step& current) {
    if (ev_.kind == Event::Kind::kMedia) {
      const auto& h = s_.history;
      for (size_t i = h.size(); i-- > 1;) {
        const Step* step = flow_->Find(h[i - 1].first);
        if (!step || step->kind != Step::Kind::kCollectPhotos || !step->Accepts(MediaKind()))
          continue;
        if (h[i - 1].second <= at_ && at_ <= h[i].second) {
          Added added = AddPhoto(step->field, *step);
          if (added == Added::kDuplicate) t_.note = "duplicate_photo";
          if (added != Added::kYes) return;
          if (step->id != current.id) Say("late", Render(step->late, step));
          t_.note = "late_photo";
          return;
        }
      }
      // Not sent while a photo step was open: the current step answers it.
      if (current.kind == Step::Kind::kCollectPhotos || at_ == s_.entered_at)
        return Current(current);
    }
    t_.note = "superseded";
  }

  const FlowSet& flows_;
  const EngineSettings& settings_;
  Transition& t_;
  ConversationState& s_;
  const Event& ev_;
  int64_t at_;  // the event's time (an extractor's answer: the time of the message it is about)
  const Flow* flow_ = nullptr;
  bool rolled_back_ = false;  // the flow asked for is not rolled out to this person
};

}  // namespace

std::string PhotoFailedText(const std::string& code, bool send_again, const std::string& kind) {
  const std::string noun = MediaNoun(kind);
  std::string text;
  if (code == "too_large") {
    text = "That " + noun + " was too large for us to save.";
  } else if (code == "not_a_photo") {
    text = kind == "document"
               ? "We can only take PDF files, so we couldn't save that document."
               : "That file didn't look like a " + noun + ", so we couldn't save it.";
  } else if (code == "expired") {
    text = "That " + noun + " was no longer available from WhatsApp by the time we fetched it.";
  } else {
    text = "That " + noun + " didn't come through.";
  }
  return text + (send_again ? " Please send it again." : "");
}

std::string SafeFileName(const std::string& name) {
  const size_t slash = name.find_last_of("/\\");
  const std::string base = slash == std::string::npos ? name : name.substr(slash + 1);
  std::string out;
  for (char c : base) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u != 0x7F) out += c;
  }
  out = Trim(out);
  if (out == "." || out == "..") return "";
  if (out.size() > kFileNameLimit) {
    size_t cut = kFileNameLimit;
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
    out.resize(cut);
  }
  return out;
}

TypedAnswer ParseTypedAnswer(const std::vector<std::string>& answers, const std::string& text) {
  const std::string t = Trim(text);
  TypedAnswer best;
  size_t best_len = 0;
  for (const auto& answer : answers) {
    const std::string want = Trim(answer);
    // Match `want` at the start of `t`, case aside, a space in it matching any run of spaces.
    size_t i = 0, j = 0;
    while (i < want.size() && j < t.size()) {
      const auto wc = static_cast<unsigned char>(want[i]), tc = static_cast<unsigned char>(t[j]);
      if (std::isspace(wc)) {
        if (!std::isspace(tc)) break;
        while (i < want.size() && std::isspace(static_cast<unsigned char>(want[i]))) ++i;
        while (j < t.size() && std::isspace(static_cast<unsigned char>(t[j]))) ++j;
        continue;
      }
      if (std::toupper(wc) != std::toupper(tc)) break;
      ++i, ++j;
    }
    if (i < want.size() || want.size() <= best_len) continue;
    // The answer ends there: at the end, or before a space or a separator ("OKAY" is not "OK").
    size_t width = 0;
    if (j < t.size() && !std::isspace(static_cast<unsigned char>(t[j])) &&
        !IsSeparatorAt(t, j, &width))
      continue;
    // The note: what follows, without the separators and spaces that lead into it.
    size_t k = j;
    while (k < t.size()) {
      if (std::isspace(static_cast<unsigned char>(t[k]))) {
        ++k;
      } else if (IsSeparatorAt(t, k, &width)) {
        k += width;
      } else {
        break;
      }
    }
    best = {answer, t.substr(k)};
    best_len = want.size();
  }
  return best;
}

void Engine::Reload(FlowSet flows) {
  auto next = std::make_shared<const FlowSet>(std::move(flows));
  std::lock_guard<std::mutex> lock(mu_);
  flows_ = std::move(next);
}

int64_t Engine::RunTimeoutSeconds(const ConversationState& state) const {
  if (state.flow.empty()) return 0;
  const std::shared_ptr<const FlowSet> flows = this->flows();
  const Flow* flow = flows->Find(state.flow);
  if (flow && flow->assigned) return 0;
  return flow && flow->inactivity_timeout_seconds > 0 ? flow->inactivity_timeout_seconds
                                                      : settings_.inactivity_timeout_seconds;
}

std::shared_ptr<const FlowSet> Engine::flows() const {
  std::lock_guard<std::mutex> lock(mu_);
  return flows_;
}

namespace {
// Why an event is not the flow's (the audit's note), or nullptr: a message that did not come on the
// `messages` field, a change of the thread's owner. Who owns the conversation decides what they
// mean.
const char* NotTheFlows(const Event& e) {
  if (e.kind == Event::Kind::kHandover)
    return e.handover_action == "control_passed" ? "control_passed" : "control_taken";
  switch (e.channel) {
    case Event::Channel::kMessages:
      return nullptr;
    case Event::Channel::kStandby:
      return "standby";
    case Event::Channel::kEcho:
      return "echo";
    case Event::Channel::kHistory:
      return "history";
  }
  return nullptr;
}
}  // namespace

Transition Engine::Advance(const ConversationState& state, const Event& event, int64_t now) const {
  // Recorded once, with no effect: never starts, advances or answers a flow.
  if (const char* note = NotTheFlows(event)) return Transition{state, {}, note};
  const std::shared_ptr<const FlowSet> flows = this->flows();  // one set for the whole transition
  Transition t{state, {}, ""};
  bool inbound = IsInbound(event.kind);
  int64_t at = inbound && event.wa_timestamp > 0 ? event.wa_timestamp : now;
  Run run(*flows, settings_, t, event, at);
  if (event.kind == Event::Kind::kRunExpired) {
    run.Internal();
    return t;  // flow.expired alone: no run resumes, nothing is said
  }
  if (!inbound) {
    run.Internal();
  } else {
    t.state.messages++;
    t.state.last_inbound_at = std::max(t.state.last_inbound_at, at);
    run.Inbound();
  }
  run.Resume();
  run.Greet();
  return t;
}

}  // namespace convoy::conversation
