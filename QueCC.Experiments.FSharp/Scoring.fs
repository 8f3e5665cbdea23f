/// The benchmarks' official metrics (PAPER.md §4), as pure functions over parsed answers and ground truth.
/// Each rule follows the published evaluation code it names; where that code is ambiguous or crashes the choice is commented.
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
    | Choice
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
        | ScienceQa
        | MmBench
        | Seed -> Choice
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
// VQA answer normalisation (the official VQA evaluation, vqaEval.py: processPunctuation, processDigitArticle)

let private contractions =
    dict [ "aint", "ain't"; "arent", "aren't"; "cant", "can't"; "couldve", "could've"; "couldnt", "couldn't"
           "couldn'tve", "couldn't've"; "couldnt've", "couldn't've"; "didnt", "didn't"; "doesnt", "doesn't"
           "dont", "don't"; "hadnt", "hadn't"; "hasnt", "hasn't"; "havent", "haven't"; "hed", "he'd"
           "hes", "he's"; "howd", "how'd"; "howll", "how'll"; "hows", "how's"; "Im", "I'm"; "Ive", "I've"
           "isnt", "isn't"; "itd", "it'd"; "itll", "it'll"; "let's", "let's"; "maam", "ma'am"; "mightnt", "mightn't"
           "mightve", "might've"; "mustnt", "mustn't"; "mustve", "must've"; "neednt", "needn't"; "notve", "not've"
           "oclock", "o'clock"; "oughtnt", "oughtn't"; "shant", "shan't"; "shed", "she'd"; "shes", "she's"
           "shouldve", "should've"; "shouldnt", "shouldn't"; "somebodys", "somebody's"; "someones", "someone's"
           "somethings", "something's"; "thats", "that's"; "thered", "there'd"; "therere", "there're"
           "theres", "there's"; "theyd", "they'd"; "theyll", "they'll"; "theyre", "they're"; "theyve", "they've"
           "wasnt", "wasn't"; "wed", "we'd"; "weve", "we've"; "werent", "weren't"; "whatll", "what'll"
           "whatre", "what're"; "whats", "what's"; "whatve", "what've"; "whens", "when's"; "whered", "where'd"
           "wheres", "where's"; "whereve", "where've"; "whod", "who'd"; "wholl", "who'll"; "whos", "who's"
           "whove", "who've"; "whyll", "why'll"; "whyre", "why're"; "whys", "why's"; "wont", "won't"
           "wouldve", "would've"; "wouldnt", "wouldn't"; "yall", "y'all"; "youd", "you'd"; "youll", "you'll"
           "youre", "you're"; "youve", "you've" ]

let private numberWords =
    dict [ "none", "0"; "zero", "0"; "one", "1"; "two", "2"; "three", "3"; "four", "4"; "five", "5"
           "six", "6"; "seven", "7"; "eight", "8"; "nine", "9"; "ten", "10" ]

let private articles = set [ "a"; "an"; "the" ]

/// Characters the official code removes or turns into spaces; '.', ':' and '\'' are not among them.
let private punctuation = [ ';'; '/'; '['; ']'; '"'; '{'; '}'; '('; ')'; '='; '+'; '\\'; '_'; '-'; '>'; '<'; '@'; '`'; ','; '?'; '!' ]

let private commaBetweenDigits = Regex(@"(\d)(,)(\d)", RegexOptions.Compiled)

// The official pattern is "(?!<=\d)(\.)(?!\d)": its look-behind is mistyped as a look-ahead, so in effect a period
// is dropped unless a digit follows ("3.5" keeps it, "dog." loses it). We reproduce the effect, not the intent.
let private periodNotBeforeDigit = Regex(@"\.(?!\d)", RegexOptions.Compiled)

/// processPunctuation: a punctuation mark next to a space, or anywhere in a text with a digit,digit comma, is deleted
/// ("1,000" → "1000", "yes, it is" → "yes it is"); otherwise it becomes a space ("black/white" → "black white").
let processPunctuation (text: string) =
    let deleteAll = commaBetweenDigits.IsMatch text
    let mutable out = text
    for p in punctuation do
        let ps = string p
        // The test looks at the original text, as the official code does, not at the partly processed one.
        if text.Contains(ps + " ") || text.Contains(" " + ps) || deleteAll then out <- out.Replace(ps, "")
        else out <- out.Replace(ps, " ")
    periodNotBeforeDigit.Replace(out, "")

/// processDigitArticle: lower-case, number words to digits, articles dropped, contractions restored, single spaces.
let processDigitArticle (text: string) =
    text.ToLowerInvariant().Split([| ' '; '\t'; '\n'; '\r' |], StringSplitOptions.RemoveEmptyEntries)
    |> Array.map (fun w -> match numberWords.TryGetValue w with | true, d -> d | _ -> w)
    |> Array.filter (fun w -> not (articles.Contains w))
    |> Array.map (fun w -> match contractions.TryGetValue w with | true, c -> c | _ -> w)
    |> String.concat " "

/// The official VQA normalisation of an answer.
let normalizeVqa (answer: string) =
    answer.Replace('\n', ' ').Replace('\t', ' ').Trim() |> processPunctuation |> processDigitArticle

/// Accuracy of one predicted answer against the human answers: for each human left out in turn,
/// min(1, matches among the others / 3), averaged. Both sides are normalised (as LLaVA's TextVQA evaluator,
/// m4c_evaluator.py, does; the VQA server normalises only the prediction, against pre-normalised ground truth).
let vqaAccuracy (humans: string list) (predicted: string) =
    if List.isEmpty humans then invalidArg (nameof humans) "a VQA question needs at least one human answer"
    let p = normalizeVqa predicted
    let gt = humans |> List.map normalizeVqa |> Array.ofList
    let perLeftOut =
        [ for i in 0 .. gt.Length - 1 ->
              let matches = gt |> Array.indexed |> Array.filter (fun (j, a) -> j <> i && a = p) |> Array.length
              min 1.0 (float matches / 3.0) ]
    List.average perLeftOut

// ---------------------------------------------------------------------------------------------
// GQA

/// LLaVA's convert_gqa_for_eval.py: answer.rstrip('.').lower(); surrounding spaces are trimmed too.
let normalizeGqa (answer: string) = answer.Trim().TrimEnd('.').Trim().ToLowerInvariant()

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
// Multiple choice

let private bareLetter = Regex(@"^\(?([A-Za-z])\)?[.:)]?$", RegexOptions.Compiled)
let private leadingLetter = Regex(@"^\(?([A-Z])(\)|\.|:)(\s|$)", RegexOptions.Compiled)
// Only the word "answer"/"is" ignores case: a lower-case letter after it is prose ("the answer is a dog"), not an option.
let private answerIs = Regex(@"(?i:answer)(?:\s+(?i:is))?\s*:?\s*\(?([A-Z])(?![\w'])", RegexOptions.Compiled)
let private parenthesised = Regex(@"\(([A-Z])\)", RegexOptions.Compiled)

/// The option letter a free-text answer picks, or None when it picks none or several. Tried in order:
/// the whole answer is a letter ("B", "(b)", "C."); it starts with "B." / "B)" / "(B)" / "B:" (as LLaVA's
/// ScienceQA script's "B. " rule, but a bare "A " is not taken: it is the article); "the answer is C" /
/// "Answer: (C)"; exactly one distinct parenthesised "(C)" anywhere.
let extractChoice (text: string) =
    let t = text.Trim()
    let m1 = bareLetter.Match t
    if m1.Success then Some(Char.ToUpperInvariant m1.Groups[1].Value[0])
    else
        let m2 = leadingLetter.Match t
        if m2.Success then Some m2.Groups[1].Value[0]
        else
            let letters (r: Regex) = r.Matches t |> Seq.map (fun m -> m.Groups[1].Value[0]) |> Seq.distinct |> List.ofSeq
            match letters answerIs with
            | [ c ] -> Some c
            | _ :: _ -> None
            | [] ->
                match letters parenthesised with
                | [ c ] -> Some c
                | _ -> None

// ---------------------------------------------------------------------------------------------
// MME

let mmePerception = [ "existence"; "count"; "position"; "color"; "posters"; "celebrity"; "scene"; "landmark"; "artwork"; "OCR" ]
let mmeCognition = [ "commonsense_reasoning"; "numerical_calculation"; "text_translation"; "code_reasoning" ]

/// MME's calculation.py: lower-case; "yes"/"no" as is, else "yes" or "no" inside the first 4 characters, else other.
let mmeAnswer (text: string) =
    let t = text.Trim().ToLowerInvariant()
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
// Ground truth, predictions and the report

/// One benchmark's ground truth for one question.
type Truth =
    | HumanAnswers of string list
    | ExactAnswer of string
    | PopeLabel of label: YesNo * category: string option
    | ChoiceAnswer of letter: char
    | MmeLabel of subtask: string * image: string * label: YesNo

type Metrics =
    | VqaMetrics of accuracy: float
    | ExactMatchMetrics of accuracy: float
    /// Over all items, and per category when the ground truth names categories.
    | PopeResult of overall: PopeMetrics * perCategory: (string * PopeMetrics) list
    /// `unparsed`: answers from which no option letter could be read (scored wrong).
    | ChoiceMetrics of accuracy: float * unparsed: int
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
      /// The number of the paper's table: accuracy × 100; POPE the mean F1 × 100 over categories (overall
      /// F1 without categories); MME the perception score.
      Headline: float }

let private mean xs = if List.isEmpty xs then 0.0 else List.average xs

/// Scores answers (question id → model text) against ground truth (question id → truth), the truth in file order.
let score (benchmark: Benchmark) (truth: (string * Truth) list) (answers: Map<string, string>) : ScoreReport =
    let answer id = Map.tryFind id answers
    let truthIds = truth |> List.map fst |> Set.ofList
    let wrongKind id (t: Truth) =
        invalidArg (nameof truth) $"question {id}: ground truth {t} does not belong to {Benchmark.name benchmark}"
    let metrics, headline =
        match Benchmark.kind benchmark with
        | VqaSoft ->
            let acc =
                truth
                |> List.map (fun (id, t) ->
                    match t, answer id with
                    | HumanAnswers hs, Some a -> vqaAccuracy hs a
                    | HumanAnswers _, None -> 0.0
                    | t, _ -> wrongKind id t)
                |> mean
            VqaMetrics acc, acc * 100.0
        | ExactMatch ->
            let acc =
                truth
                |> List.map (fun (id, t) ->
                    match t, answer id with
                    | ExactAnswer gt, Some a -> if normalizeGqa a = normalizeGqa gt then 1.0 else 0.0
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
        | Choice ->
            let results =
                truth
                |> List.map (fun (id, t) ->
                    match t with
                    | ChoiceAnswer gt ->
                        match answer id with
                        | None -> 0.0, false
                        | Some a ->
                            match extractChoice a with
                            | Some c -> (if c = Char.ToUpperInvariant gt then 1.0 else 0.0), false
                            | None -> 0.0, true
                    | t -> wrongKind id t)
            let acc = results |> List.map fst |> mean
            ChoiceMetrics(acc, results |> List.filter snd |> List.length), acc * 100.0
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
