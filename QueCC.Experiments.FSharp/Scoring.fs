/// The benchmarks' official metrics (PAPER.md §4), as pure functions over parsed answers and ground truth.
/// Each rule follows the published evaluation code it names, and tests compare it with that code's outputs on a varied
/// answer set (scripts/fixtures/make_scoring_fixtures.py). Where the official code crashes (a zero denominator, a
/// missing answer) or needs data we do not carry, the choice is commented. Python's `str.split()`/`strip()` whitespace
/// is reproduced; its `lower()` is taken as .NET's invariant lower-casing, which differs only outside ASCII.
module QueCC.Experiments.Scoring

open System
open System.Text.RegularExpressions

/// The benchmarks of the paper's table; several share one metric.
type Benchmark =
    | VqaV2
    | TextVqa
    | VizWiz
    | Gqa
    | Pope
    | ScienceQa
    | MmBench
    | Seed
    | Mme

/// How a benchmark is scored.
type MetricKind =
    /// min(1, #humans/3) averaged over the 10-choose-9 subsets of the human answers.
    | VqaSoft
    /// Exact match after lower-casing and stripping trailing periods.
    | ExactMatch
    | PopeYesNo
    /// LLaVA's eval_science_qa.py letter rules, with the IMG subset.
    | SqaChoice
    /// MMBench CircularEval: a question counts only when every option-rotated copy is answered right.
    | CircularChoice
    /// SEED-Bench as LLaVA's convert_seed_for_submission.py: the answer text equals the letter; per question type.
    | SeedChoice
    | MmeYesNo

module Benchmark =
    let all = [ VqaV2; TextVqa; VizWiz; Gqa; Pope; ScienceQa; MmBench; Seed; Mme ]

    let name =
        function
        | VqaV2 -> "vqav2"
        | TextVqa -> "textvqa"
        | VizWiz -> "vizwiz"
        | Gqa -> "gqa"
        | Pope -> "pope"
        | ScienceQa -> "scienceqa"
        | MmBench -> "mmbench"
        | Seed -> "seed"
        | Mme -> "mme"

    let kind =
        function
        | VqaV2
        | TextVqa
        | VizWiz -> VqaSoft
        | Gqa -> ExactMatch
        | Pope -> PopeYesNo
        | ScienceQa -> SqaChoice
        | MmBench -> CircularChoice
        | Seed -> SeedChoice
        | Mme -> MmeYesNo

    /// Parses a benchmark name as the CLI takes it (case-insensitive; "vqa" and "sqa" as short forms).
    let tryParse (s: string) =
        match s.Trim().ToLowerInvariant().Replace("-", "").Replace("_", "") with
        | "vqav2"
        | "vqa" -> Some VqaV2
        | "textvqa" -> Some TextVqa
        | "vizwiz" -> Some VizWiz
        | "gqa" -> Some Gqa
        | "pope" -> Some Pope
        | "scienceqa"
        | "sqa" -> Some ScienceQa
        | "mmbench"
        | "mmb" -> Some MmBench
        | "seed"
        | "seedbench" -> Some Seed
        | "mme" -> Some Mme
        | _ -> None

// ---------------------------------------------------------------------------------------------
// Python's whitespace handling, which the official scripts rely on

/// str.isspace(): .NET's white space plus the four information separators \x1c-\x1f.
let private isPySpace (c: char) = Char.IsWhiteSpace c || (c >= '\x1c' && c <= '\x1f')

/// str.split() without arguments.
let private pySplit (s: string) =
    let words = Collections.Generic.List<string>()
    let mutable start = -1
    for i in 0 .. s.Length - 1 do
        if isPySpace s[i] then
            if start >= 0 then words.Add(s.Substring(start, i - start))
            start <- -1
        elif start < 0 then start <- i
    if start >= 0 then words.Add(s.Substring start)
    words.ToArray()

/// str.strip() without arguments.
let private pyStrip (s: string) =
    let mutable a = 0
    let mutable b = s.Length
    while a < b && isPySpace s[a] do a <- a + 1
    while b > a && isPySpace s[b - 1] do b <- b - 1
    s.Substring(a, b - a)

// ---------------------------------------------------------------------------------------------
// VQA answer normalisation: vqaEval.py (VQAv2, and VizWiz's server) and m4c_evaluator.py (TextVQA, LLaVA's submissions)

/// The contraction table of vqaEval.py, identical in m4c_evaluator.py (mappings such as "somebody'd" → "somebodyd"
/// and keys with capitals, which never match after lower-casing, are kept as the official code has them).
let private contractions =
    dict [
           "aint", "ain't"; "arent", "aren't"; "cant", "can't"; "couldve", "could've"; "couldnt", "couldn't"; "couldn'tve", "couldn't've"
           "couldnt've", "couldn't've"; "didnt", "didn't"; "doesnt", "doesn't"; "dont", "don't"; "hadnt", "hadn't"; "hadnt've", "hadn't've"
           "hadn'tve", "hadn't've"; "hasnt", "hasn't"; "havent", "haven't"; "hed", "he'd"; "hed've", "he'd've"; "he'dve", "he'd've"
           "hes", "he's"; "howd", "how'd"; "howll", "how'll"; "hows", "how's"; "Id've", "I'd've"; "I'dve", "I'd've"
           "Im", "I'm"; "Ive", "I've"; "isnt", "isn't"; "itd", "it'd"; "itd've", "it'd've"; "it'dve", "it'd've"
           "itll", "it'll"; "let's", "let's"; "maam", "ma'am"; "mightnt", "mightn't"; "mightnt've", "mightn't've"; "mightn'tve", "mightn't've"
           "mightve", "might've"; "mustnt", "mustn't"; "mustve", "must've"; "neednt", "needn't"; "notve", "not've"; "oclock", "o'clock"
           "oughtnt", "oughtn't"; "ow's'at", "'ow's'at"; "'ows'at", "'ow's'at"; "'ow'sat", "'ow's'at"; "shant", "shan't"; "shed've", "she'd've"
           "she'dve", "she'd've"; "she's", "she's"; "shouldve", "should've"; "shouldnt", "shouldn't"; "shouldnt've", "shouldn't've"; "shouldn'tve", "shouldn't've"
           "somebody'd", "somebodyd"; "somebodyd've", "somebody'd've"; "somebody'dve", "somebody'd've"; "somebodyll", "somebody'll"; "somebodys", "somebody's"; "someoned", "someone'd"
           "someoned've", "someone'd've"; "someone'dve", "someone'd've"; "someonell", "someone'll"; "someones", "someone's"; "somethingd", "something'd"; "somethingd've", "something'd've"
           "something'dve", "something'd've"; "somethingll", "something'll"; "thats", "that's"; "thered", "there'd"; "thered've", "there'd've"; "there'dve", "there'd've"
           "therere", "there're"; "theres", "there's"; "theyd", "they'd"; "theyd've", "they'd've"; "they'dve", "they'd've"; "theyll", "they'll"
           "theyre", "they're"; "theyve", "they've"; "twas", "'twas"; "wasnt", "wasn't"; "wed've", "we'd've"; "we'dve", "we'd've"
           "weve", "we've"; "werent", "weren't"; "whatll", "what'll"; "whatre", "what're"; "whats", "what's"; "whatve", "what've"
           "whens", "when's"; "whered", "where'd"; "wheres", "where's"; "whereve", "where've"; "whod", "who'd"; "whod've", "who'd've"
           "who'dve", "who'd've"; "wholl", "who'll"; "whos", "who's"; "whove", "who've"; "whyll", "why'll"; "whyre", "why're"
           "whys", "why's"; "wont", "won't"; "wouldve", "would've"; "wouldnt", "wouldn't"; "wouldnt've", "wouldn't've"; "wouldn'tve", "wouldn't've"
           "yall", "y'all"; "yall'll", "y'all'll"; "y'allll", "y'all'll"; "yall'd've", "y'all'd've"; "y'alld've", "y'all'd've"; "y'all'dve", "y'all'd've"
           "youd", "you'd"; "youd've", "you'd've"; "you'dve", "you'd've"; "youll", "you'll"; "youre", "you're"; "youve", "you've" ]

let private numberWords =
    dict [ "none", "0"; "zero", "0"; "one", "1"; "two", "2"; "three", "3"; "four", "4"; "five", "5"
           "six", "6"; "seven", "7"; "eight", "8"; "nine", "9"; "ten", "10" ]

let private articles = set [ "a"; "an"; "the" ]

/// Characters the official code removes or turns into spaces; '.', ':' and '\'' are not among them.
let private punctuation = [ ";"; "/"; "["; "]"; "\""; "{"; "}"; "("; ")"; "="; "+"; "\\"; "_"; "-"; ">"; "<"; "@"; "`"; ","; "?"; "!" ]

/// vqaEval.py's commaStrip, used only as a test: a digit, a comma, a digit anywhere.
let private vqaEvalComma = Regex(@"(\d)(\,)(\d)", RegexOptions.Compiled)

/// m4c_evaluator.py's COMMA_STRIP: a digit, one or more commas, a digit. (Its word_tokenize has removed every comma
/// by then, so in TextVQA it never matches.)
let private m4cComma = Regex(@"(?<=\d)(\,)+(?=\d)", RegexOptions.Compiled)

// The official pattern, verbatim: the look-behind is mistyped as a look-ahead, so a period is dropped unless a digit
// follows ("3.5" keeps it, "dog." loses it). It is called as `sub("", text, re.UNICODE)`, which passes re.UNICODE
// (32) as the count: at most the first 32 periods go.
let private periodStrip = Regex(@"(?!<=\d)(\.)(?!\d)", RegexOptions.Compiled)
let private periodStripCount = 32

let private processPunctuationWith (comma: Regex) (text: string) =
    let deleteAll = comma.IsMatch text
    let mutable out = text
    for p in punctuation do
        // The test looks at the original text, as the official code does, not at the partly processed one.
        if text.Contains(p + " ") || text.Contains(" " + p) || deleteAll then out <- out.Replace(p, "")
        else out <- out.Replace(p, " ")
    periodStrip.Replace(out, "", periodStripCount)

/// vqaEval.py processPunctuation: a punctuation mark next to a space, or anywhere in a text with a digit,digit comma,
/// is deleted ("1,000" → "1000", "yes, it is" → "yes it is"); otherwise it becomes a space ("black/white" → "black white").
let processPunctuation (text: string) = processPunctuationWith vqaEvalComma text

/// processDigitArticle: lower-case, number words to digits, articles dropped, contractions restored, single spaces.
let processDigitArticle (text: string) =
    pySplit (text.ToLowerInvariant())
    |> Array.map (fun w -> match numberWords.TryGetValue w with | true, d -> d | _ -> w)
    |> Array.filter (fun w -> not (articles.Contains w))
    |> Array.map (fun w -> match contractions.TryGetValue w with | true, c -> c | _ -> w)
    |> String.concat " "

/// vqaEval.py's first step on every answer: newlines and tabs to spaces, surrounding white space stripped.
let private vqaClean (answer: string) = pyStrip (answer.Replace('\n', ' ').Replace('\t', ' '))

/// vqaEval.py's normalisation, which it applies to both sides only when the human answers disagree.
let normalizeVqa (answer: string) = vqaClean answer |> processPunctuation |> processDigitArticle

/// m4c_evaluator.py EvalAIAnswerProcessor: word_tokenize (lower-case, drop ',' and '?', split "'s" off as " 's"),
/// then the vqaEval steps. TextVQA scores both sides with it; LLaVA passes VQAv2 and VizWiz answers through it
/// before submitting them (convert_vqav2_for_submission.py, convert_vizwiz_for_submission.py).
let evalAiAnswer (answer: string) =
    let tokenized = pyStrip (answer.ToLowerInvariant().Replace(",", "").Replace("?", "").Replace("'s", " 's"))
    pyStrip (tokenized.Replace('\n', ' ').Replace('\t', ' ')) |> processPunctuationWith m4cComma |> processDigitArticle

/// min(1, matches among the others / 3) for each human left out in turn, averaged.
let private leaveOneOut (humans: string[]) (p: string) =
    [ for i in 0 .. humans.Length - 1 ->
          let matches = humans |> Array.indexed |> Array.filter (fun (j, a) -> j <> i && a = p) |> Array.length
          min 1.0 (float matches / 3.0) ]
    |> List.average

/// vqaEval.py's accuracy of one answer: when the (cleaned) human answers are not all the same, both sides are
/// normalised; when they are, neither is, so "Yes." against ten "yes" scores 0 (the reason LLaVA pre-processes).
let vqaAccuracy (humans: string list) (predicted: string) =
    if List.isEmpty humans then invalidArg (nameof humans) "a VQA question needs at least one human answer"
    let gt = humans |> List.map vqaClean |> Array.ofList
    let p = vqaClean predicted
    if (Array.distinct gt).Length > 1 then leaveOneOut (Array.map (processPunctuation >> processDigitArticle) gt) (processPunctuation (p) |> processDigitArticle)
    else leaveOneOut gt p

/// m4c TextVQAAccuracyEvaluator: both sides through `evalAiAnswer`, always. (It asserts exactly ten human answers;
/// any non-empty number is taken here.)
let textVqaAccuracy (humans: string list) (predicted: string) =
    if List.isEmpty humans then invalidArg (nameof humans) "a VQA question needs at least one human answer"
    leaveOneOut (humans |> List.map evalAiAnswer |> Array.ofList) (evalAiAnswer predicted)

/// What VQAv2 and VizWiz answers go through before vqaEval.py's accuracy.
type VqaAnswerRule =
    /// LLaVA's submission path: `evalAiAnswer` on the model text, then the server's vqaEval (the numbers LLaVA reports).
    | LlavaSubmission
    /// The model text as is into vqaEval.py (what its local demo does with a raw results file).
    | RawText

type ScoreOptions =
    { Vqa: VqaAnswerRule }

    static member Default = { Vqa = LlavaSubmission }

// ---------------------------------------------------------------------------------------------
// GQA

/// LLaVA's convert_gqa_for_eval.py: answer.rstrip('.').lower(); GQA's eval.py then compares it with the gold answer
/// as is.
let normalizeGqa (answer: string) = answer.TrimEnd('.').ToLowerInvariant()

// ---------------------------------------------------------------------------------------------
// POPE

type YesNo =
    | Yes
    | No

/// LLaVA's eval_pope.py: keep the text before the first period, drop commas, split on spaces;
/// the words "No", "no" or "not" make it no, anything else (even "NO" or an empty answer) is yes.
let popeAnswer (text: string) =
    let first = match text.IndexOf '.' with | -1 -> text | i -> text.Substring(0, i)
    let words = first.Replace(",", "").Split(' ')
    if words |> Array.exists (fun w -> w = "No" || w = "no" || w = "not") then No else Yes

type PopeMetrics =
    { Total: int
      TruePositives: int
      FalsePositives: int
      TrueNegatives: int
      FalseNegatives: int
      /// Ground-truth items without a prediction: counted in Total, never correct.
      Unanswered: int
      Accuracy: float
      Precision: float
      Recall: float
      F1: float
      /// Share of items predicted "yes" (a well-calibrated model sits near the 50% of the balanced splits).
      YesRatio: float }

let private ratio (a: int) (b: int) = if b = 0 then 0.0 else float a / float b

/// `items` = (label, prediction; None when the model gave no answer). Positive class = yes.
/// Precision/recall/F1 are 0 where their denominator is 0 (LLaVA's script would divide by zero).
let popeMetrics (items: (YesNo * YesNo option) list) =
    let count f = items |> List.filter f |> List.length
    let tp = count (fun (l, p) -> l = Yes && p = Some Yes)
    let fp = count (fun (l, p) -> l = No && p = Some Yes)
    let tn = count (fun (l, p) -> l = No && p = Some No)
    let fn = count (fun (l, p) -> l = Yes && p <> Some Yes)
    let total = items.Length
    let precision = ratio tp (tp + fp)
    let recall = ratio tp (count (fun (l, _) -> l = Yes))
    { Total = total
      TruePositives = tp
      FalsePositives = fp
      TrueNegatives = tn
      FalseNegatives = fn
      Unanswered = count (fun (_, p) -> p.IsNone)
      Accuracy = ratio (tp + tn) total
      Precision = precision
      Recall = recall
      F1 = if precision + recall = 0.0 then 0.0 else 2.0 * precision * recall / (precision + recall)
      YesRatio = ratio (tp + fp) total }

// ---------------------------------------------------------------------------------------------
// MME

let mmePerception = [ "existence"; "count"; "position"; "color"; "posters"; "celebrity"; "scene"; "landmark"; "artwork"; "OCR" ]
let mmeCognition = [ "commonsense_reasoning"; "numerical_calculation"; "text_translation"; "code_reasoning" ]

/// MME's calculation.py: lower-case (no stripping); "yes"/"no" as is, else "yes" or "no" inside the first 4
/// characters, else other.
let mmeAnswer (text: string) =
    let t = text.ToLowerInvariant()
    if t = "yes" then Some Yes
    elif t = "no" then Some No
    else
        let prefix = if t.Length > 4 then t.Substring(0, 4) else t
        if prefix.Contains "yes" then Some Yes
        elif prefix.Contains "no" then Some No
        else None

type MmeSubtask =
    { Subtask: string
      Questions: int
      Images: int
      Accuracy: float
      /// Share of images whose questions (two each in MME) are all answered right.
      AccuracyPlus: float
      /// (Accuracy + AccuracyPlus) × 100, at most 200.
      Score: float }

type MmeMetrics =
    { Subtasks: MmeSubtask list
      /// Sum of the perception subtask scores present (at most 2000 with all ten).
      Perception: float
      /// Sum of the cognition subtask scores present (at most 800).
      Cognition: float }

/// `items` = (subtask, image, correct). Subtasks outside MME's 14 are scored but counted in neither sum.
/// calculation.py pairs consecutive lines of a subtask file; MME lists each image's two questions together, so
/// grouping by image is the same pairing and does not depend on file order.
let mmeMetrics (items: (string * string * bool) list) =
    let subtasks =
        items
        |> List.groupBy (fun (s, _, _) -> s)
        |> List.map (fun (s, qs) ->
            let images = qs |> List.groupBy (fun (_, img, _) -> img)
            let acc = ratio (qs |> List.filter (fun (_, _, c) -> c) |> List.length) qs.Length
            let accPlus = ratio (images |> List.filter (fun (_, q) -> q |> List.forall (fun (_, _, c) -> c)) |> List.length) images.Length
            { Subtask = s; Questions = qs.Length; Images = images.Length; Accuracy = acc; AccuracyPlus = accPlus; Score = (acc + accPlus) * 100.0 })
    let order s =
        match List.tryFindIndex ((=) s) (mmePerception @ mmeCognition) with
        | Some i -> i
        | None -> Int32.MaxValue
    let subtasks = subtasks |> List.sortBy (fun s -> order s.Subtask, s.Subtask)
    let sumOf names = subtasks |> List.filter (fun s -> List.contains s.Subtask names) |> List.sumBy (fun s -> s.Score)
    { Subtasks = subtasks; Perception = sumOf mmePerception; Cognition = sumOf mmeCognition }

// ---------------------------------------------------------------------------------------------
// ScienceQA (LLaVA's eval_science_qa.py)

let private sqaOptions = "ABCDE"
let private theAnswerIs = Regex(@"The answer is ([A-Z]).", RegexOptions.Compiled)

/// The letter eval_science_qa.py reads, or None ("FAILED"): the whole text is one of A-E; or it starts with such a
/// letter and ". "; or "The answer is X" followed by any character occurs exactly once. Nothing else: "(B)", "b",
/// "B." and "Answer: (C)" are failures there, and so here.
let scienceQaChoice (text: string) =
    if text.Length = 1 && sqaOptions.Contains text[0] then Some text[0]
    elif text.Length >= 3 && sqaOptions.Contains text[0] && text.Substring(1, 2) = ". " then Some text[0]
    else
        let ms = theAnswerIs.Matches text
        if ms.Count = 1 then Some ms[0].Groups[1].Value[0] else None

type SqaMetrics =
    { Correct: int
      Count: int
      Accuracy: float
      /// The questions with an image (LLaVA's "IMG-Accuracy", the number its tables report). Membership comes from the
      /// ground truth's image; eval_science_qa.py reads it from the answer's prompt, so there an unanswered image
      /// question drops out of the subset, while here it stays in as wrong (with every question answered they agree).
      ImgCorrect: int
      ImgCount: int
      ImgAccuracy: float
      /// Answers from which no letter could be read (scored wrong).
      Unparsed: int }

// ---------------------------------------------------------------------------------------------
// MMBench (VLMEvalKit's CircularEval under its exact-matching policy)

let private rejections =
    [ "Sorry, I can't help with images of people yet."; "I can't process this file."
      "I'm sorry, but without the image provided"; "Cannot determine the answer" ]

let private verboseAnswer = Regex(@"(?i)(?:correct\s+)?answer\s+is\s+\**([ABCD])\**", RegexOptions.Compiled)

/// VLMEvalKit matching_util.can_infer_option: punctuation .()[],:;!*#{} to spaces, split; exactly one option letter
/// among the words, and among the last four, picks it; no letter but a "Z" picks Z; refusals pick Z; else
/// "answer is X" (any case) when X is an option. (Its guard against the article "A" is active only with VERBOSE set.)
let canInferOption (answer: string) (letters: char list) =
    if answer.Contains "Failed to obtain answer via API" then None
    elif rejections |> List.exists answer.Contains then Some 'Z'
    else
        let mutable m = answer
        for c in ".()[],:;!*#{}" do m <- m.Replace(c, ' ')
        let words = pySplit m
        let present = letters |> List.filter (fun c -> Array.contains (string c) words)
        let byWord =
            match present with
            | [ _ ] ->
                letters
                |> List.tryFind (fun ch -> let i = Array.IndexOf(words, string ch) in i >= 0 && i > words.Length - 5)
            | [] when Array.contains "Z" words -> Some 'Z'
            | _ -> None
        match byWord with
        | Some c -> Some c
        | None ->
            let v = verboseAnswer.Match answer
            let c = if v.Success then Char.ToUpperInvariant v.Groups[1].Value[0] else ' '
            if v.Success && List.contains c letters then Some c else None

/// VLMEvalKit matching_util.can_infer_text: exactly one option text inside the lower-cased answer, and the answer at
/// most twice as long as all option texts together.
let canInferText (answer: string) (options: (char * string) list) =
    let a = answer.ToLowerInvariant()
    if a.Length > 2 * (options |> List.sumBy (fun (_, v) -> v.Length)) then None
    else
        match options |> List.filter (fun (_, v) -> a.Contains(v.ToLowerInvariant())) with
        | [ k, _ ] -> Some k
        | _ -> None

/// VLMEvalKit can_infer: the option letter, else the option text.
let canInfer (answer: string) (options: (char * string) list) =
    match canInferOption answer (List.map fst options) with
    | Some c -> Some c
    | None -> canInferText answer options

/// Rows with index ≥ 1,000,000 are option-rotated copies of question index mod 1,000,000.
let circularBase = 1_000_000L

type MmbMetrics =
    { /// Questions (rows with index below 1,000,000) and how many have every copy right.
      Questions: int
      CircularCorrect: int
      CircularAccuracy: float
      /// Single pass over the same questions' original rows.
      VanillaAccuracy: float
      /// All rows, copies included.
      Rows: int
      /// Rows from whose answer no option could be inferred (wrong).
      Unparsed: int
      /// Copies whose original question is absent; VLMEvalKit ignores them, so do we.
      Orphans: int
      /// Circular accuracy per category, for ground truth that names categories.
      PerCategory: (string * int * float) list }

// ---------------------------------------------------------------------------------------------
// SEED-Bench (LLaVA's convert_seed_for_submission.py)

type SeedMetrics =
    { Count: int
      Accuracy: float
      /// (question type id, questions, accuracy), sorted by id as the script prints them.
      PerType: (string * int * float) list
      /// Over the questions whose data type is "image" (LLaVA's SEED-IMG) and "video"; 0 questions → 0.
      ImageCount: int
      ImageAccuracy: float
      VideoCount: int
      VideoAccuracy: float }

// ---------------------------------------------------------------------------------------------
// Ground truth, predictions and the report

/// One benchmark's ground truth for one question.
type Truth =
    | HumanAnswers of string list
    | ExactAnswer of string
    | PopeLabel of label: YesNo * category: string option
    /// `choices`: how many options the question has (letters beyond are wrong), None for A-E; `image`: IMG subset.
    | SqaAnswer of letter: char * choices: int option * image: bool
    /// `options`: (letter, text) in order; without texts the letters A-D and no text matching.
    | MmbAnswer of letter: char * options: (char * string) list * category: string option
    | SeedAnswer of letter: char * questionType: string * dataType: string
    | MmeLabel of subtask: string * image: string * label: YesNo

type Metrics =
    | VqaMetrics of accuracy: float
    | ExactMatchMetrics of accuracy: float
    /// Over all items, and per category when the ground truth names categories.
    | PopeResult of overall: PopeMetrics * perCategory: (string * PopeMetrics) list
    | SqaResult of SqaMetrics
    | MmbResult of MmbMetrics
    | SeedResult of SeedMetrics
    | MmeResult of MmeMetrics

type ScoreReport =
    { Benchmark: Benchmark
      /// Ground-truth items scored (those without an answer included, as wrong).
      Scored: int
      /// Question ids with ground truth but no answer; they count as wrong.
      MissingAnswers: string list
      /// Question ids answered but absent from the ground truth; they are not scored.
      UnmatchedAnswers: string list
      Metrics: Metrics
      /// The number of the paper's table: accuracy × 100; POPE the mean F1 × 100 over categories (overall F1 without
      /// categories); ScienceQA the IMG accuracy (all questions when none has an image); MMBench the CircularEval
      /// accuracy; SEED the image accuracy (all questions when none is an image); MME the perception score.
      Headline: float }

let private mean xs = if List.isEmpty xs then 0.0 else List.average xs

let private mmbIndex (id: string) =
    match Int64.TryParse(id, Globalization.NumberStyles.None, Globalization.CultureInfo.InvariantCulture) with
    | true, i -> i
    | _ -> invalidArg "truth" $"MMBench question id \"{id}\" is not a non-negative integer index; CircularEval needs the TSV's index"

/// Scores answers (question id → model text) against ground truth (question id → truth), the truth in file order.
let scoreWith (options: ScoreOptions) (benchmark: Benchmark) (truth: (string * Truth) list) (answers: Map<string, string>) : ScoreReport =
    let answer id = Map.tryFind id answers
    let truthIds = truth |> List.map fst |> Set.ofList
    let wrongKind id (t: Truth) =
        invalidArg (nameof truth) $"question {id}: ground truth {t} does not belong to {Benchmark.name benchmark}"
    let metrics, headline =
        match Benchmark.kind benchmark with
        | VqaSoft ->
            let accuracy =
                match benchmark, options.Vqa with
                | TextVqa, _ -> textVqaAccuracy
                | _, LlavaSubmission -> fun hs a -> vqaAccuracy hs (evalAiAnswer a)
                | _, RawText -> vqaAccuracy
            let acc =
                truth
                |> List.map (fun (id, t) ->
                    match t, answer id with
                    | HumanAnswers hs, Some a -> accuracy hs a
                    | HumanAnswers _, None -> 0.0
                    | t, _ -> wrongKind id t)
                |> mean
            VqaMetrics acc, acc * 100.0
        | ExactMatch ->
            let acc =
                truth
                |> List.map (fun (id, t) ->
                    match t, answer id with
                    | ExactAnswer gt, Some a -> if normalizeGqa a = gt then 1.0 else 0.0
                    | ExactAnswer _, None -> 0.0
                    | t, _ -> wrongKind id t)
                |> mean
            ExactMatchMetrics acc, acc * 100.0
        | PopeYesNo ->
            let items =
                truth
                |> List.map (fun (id, t) ->
                    match t with
                    | PopeLabel(l, cat) -> cat, (l, answer id |> Option.map popeAnswer)
                    | t -> wrongKind id t)
            let overall = popeMetrics (List.map snd items)
            let perCat =
                items
                |> List.choose (fun (c, x) -> c |> Option.map (fun c -> c, x))
                |> List.groupBy fst
                |> List.map (fun (c, xs) -> c, popeMetrics (List.map snd xs))
                |> List.sortBy fst
            let headline = if List.isEmpty perCat then overall.F1 * 100.0 else (perCat |> List.averageBy (fun (_, m) -> m.F1)) * 100.0
            PopeResult(overall, perCat), headline
        | SqaChoice ->
            // A missing answer is the script's "FAILED": wrong, and not an unparsed text.
            let rows =
                truth
                |> List.map (fun (id, t) ->
                    match t with
                    | SqaAnswer(gt, choices, image) ->
                        let parsed = answer id |> Option.map scienceQaChoice
                        let allowed = defaultArg choices sqaOptions.Length
                        let ok =
                            match parsed with
                            | Some(Some c) -> c = gt && sqaOptions.IndexOf c < allowed
                            | _ -> false
                        ok, image, parsed = Some None
                    | t -> wrongKind id t)
            let count f = rows |> List.filter f |> List.length
            let correct = count (fun (ok, _, _) -> ok)
            let imgCount = count (fun (_, img, _) -> img)
            let imgCorrect = count (fun (ok, img, _) -> ok && img)
            let m =
                { Correct = correct; Count = rows.Length; Accuracy = ratio correct rows.Length
                  ImgCorrect = imgCorrect; ImgCount = imgCount; ImgAccuracy = ratio imgCorrect imgCount
                  Unparsed = count (fun (_, _, u) -> u) }
            SqaResult m, (if imgCount > 0 then m.ImgAccuracy else m.Accuracy) * 100.0
        | CircularChoice ->
            let rows =
                truth
                |> List.map (fun (id, t) ->
                    match t with
                    | MmbAnswer(gt, opts, cat) ->
                        let inferred = answer id |> Option.bind (fun a -> canInfer a opts)
                        mmbIndex id, (inferred = Some gt, answer id |> Option.exists (fun _ -> inferred.IsNone), cat)
                    | t -> wrongKind id t)
            let mains = rows |> List.filter (fun (i, _) -> i < circularBase)
            let groups = rows |> List.groupBy (fun (i, _) -> i % circularBase) |> Map.ofList
            let mainIds = mains |> List.map fst |> Set.ofList
            let perQuestion =
                mains |> List.map (fun (i, (ok, _, cat)) -> cat, ok, groups[i] |> List.forall (fun (_, (o, _, _)) -> o))
            let circ = perQuestion |> List.filter (fun (_, _, c) -> c) |> List.length
            let perCat =
                perQuestion
                |> List.choose (fun (cat, _, c) -> cat |> Option.map (fun k -> k, c))
                |> List.groupBy fst
                |> List.map (fun (k, xs) -> k, xs.Length, ratio (xs |> List.filter snd |> List.length) xs.Length)
                |> List.sortBy (fun (k, _, _) -> k)
            let m =
                { Questions = mains.Length; CircularCorrect = circ; CircularAccuracy = ratio circ mains.Length
                  VanillaAccuracy = ratio (perQuestion |> List.filter (fun (_, ok, _) -> ok) |> List.length) mains.Length
                  Rows = rows.Length
                  Unparsed = rows |> List.filter (fun (_, (_, u, _)) -> u) |> List.length
                  Orphans = rows |> List.filter (fun (i, _) -> not (mainIds.Contains(i % circularBase))) |> List.length
                  PerCategory = perCat }
            MmbResult m, m.CircularAccuracy * 100.0
        | SeedChoice ->
            let rows =
                truth
                |> List.map (fun (id, t) ->
                    match t with
                    | SeedAnswer(gt, qtype, dtype) -> qtype, dtype, answer id = Some(string gt)
                    | t -> wrongKind id t)
            let acc (xs: (string * string * bool) list) = ratio (xs |> List.filter (fun (_, _, ok) -> ok) |> List.length) xs.Length
            let byType =
                rows
                |> List.groupBy (fun (q, _, _) -> q)
                |> List.sortBy (fun (q, _) -> match Int32.TryParse q with | true, n -> (0, n, "") | _ -> (1, 0, q))
                |> List.map (fun (q, xs) -> q, xs.Length, acc xs)
            let ofType d = rows |> List.filter (fun (_, dt, _) -> dt = d)
            let images, videos = ofType "image", ofType "video"
            let m =
                { Count = rows.Length; Accuracy = acc rows; PerType = byType
                  ImageCount = images.Length; ImageAccuracy = acc images; VideoCount = videos.Length; VideoAccuracy = acc videos }
            SeedResult m, (if images.IsEmpty then m.Accuracy else m.ImageAccuracy) * 100.0
        | MmeYesNo ->
            let items =
                truth
                |> List.map (fun (id, t) ->
                    match t with
                    | MmeLabel(s, img, l) -> s, img, (answer id |> Option.bind mmeAnswer) = Some l
                    | t -> wrongKind id t)
            let m = mmeMetrics items
            MmeResult m, m.Perception
    { Benchmark = benchmark
      Scored = truth.Length
      MissingAnswers = truth |> List.map fst |> List.filter (fun id -> not (answers.ContainsKey id))
      UnmatchedAnswers = answers |> Map.toList |> List.map fst |> List.filter (fun id -> not (truthIds.Contains id))
      Metrics = metrics
      Headline = headline }

/// `scoreWith ScoreOptions.Default`: the numbers LLaVA reports.
let score (benchmark: Benchmark) (truth: (string * Truth) list) (answers: Map<string, string>) : ScoreReport =
    scoreWith ScoreOptions.Default benchmark truth answers
