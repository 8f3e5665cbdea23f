/// The `quecc` command line: Argu unions turned into domain records at once, then the pure core.
module QueCC.Experiments.Cli

open System
open System.Diagnostics
open System.IO
open Argu
open QueCC.Experiments.Data
open QueCC.Experiments.ScalingLaw
open QueCC.Experiments.Fitting
open QueCC.Experiments.ComputeOptimal
open QueCC.Experiments.Reproduce

type MethodArg =
    | Grid
    | Continuous

type FitArgs =
    | [<Mandatory; AltCommandLine("-d")>] Data of csv: string
    | Task of name: string
    | Method of MethodArg
    | Grid_Fraction of fraction: float
    | Seed of seed: int
    | Law_Text_Tokens of q: float
    | Bootstrap of resamples: int
    | Holdout_Llm of billions: float
    | Grid_A of lo: float * hi: float * count: int
    | Grid_Alpha of lo: float * hi: float * count: int
    | Grid_Beta of lo: float * hi: float * count: int
    | Grid_D of lo: float * hi: float * count: int
    | Json

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Data _ -> "CSV with header task,llm_params_b,visual_tokens,score."
            | Task _ -> "fit only the rows of this task (required when the file holds several)."
            | Method _ -> "grid (the authors' search, default) or continuous (bounded least squares, autograd)."
            | Grid_Fraction _ -> "search a random fraction of the grid in seeded random order, as the authors did (0.2); default 1 = exhaustive."
            | Seed _ -> "seed of the random grid subset and the bootstrap (default 0)."
            | Law_Text_Tokens _ -> "q, text tokens counted inside the law: T = V + q (default 0, as the authors' code)."
            | Bootstrap _ -> "refit on B resamples and report 95% intervals of every parameter."
            | Holdout_Llm _ -> "fit without this LLM size (billions) and report the prediction error on it."
            | Grid_A _ -> "grid axis of A: lo hi count (default 0.2 0.7 50)."
            | Grid_Alpha _ -> "grid axis of alpha: lo hi count (default 0 0.2 100)."
            | Grid_Beta _ -> "grid axis of beta: lo hi count (default 0 0.05 100)."
            | Grid_D _ -> "grid axis of D: lo hi count (default 0 0.3 10)."
            | Json -> "print JSON."

type FrontierArgs =
    | [<Mandatory; AltCommandLine("-d")>] Data of csv: string
    | [<Mandatory>] Text_Tokens of q: float
    | Task of name: string
    | Method of MethodArg
    | Law_Text_Tokens of q: float
    | Tokens of list: string
    | Budgets of count: int
    | Cost of model: string
    | Json

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Cost _ -> "flops (default: 2·N·(Q+V)) | flops+query (plus QueCC's forward over the question, 2·N·Q) | measured:FILE (seconds from `quecc bench latency --json`)."
            | Data _ -> "CSV with header task,llm_params_b,visual_tokens,score."
            | Text_Tokens _ -> "Q, text tokens of the prompt (FLOPs = 2·N·(Q+V))."
            | Task _ -> "use only the rows of this task."
            | Method _ -> "fit method (default continuous)."
            | Law_Text_Tokens _ -> "q inside the law, T = V + q (default 0)."
            | Tokens _ -> "comma-separated visual-token set of the frontier (default 1,4,16,36,64,144,576)."
            | Budgets _ -> "number of log-spaced budgets (default 25)."
            | Json -> "print JSON."

type ReproduceArgs =
    | Out of dir: string
    | Bootstrap of resamples: int
    | Seed of seed: int

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Out _ -> "output folder (default reproduce-out)."
            | Bootstrap _ -> "bootstrap resamples for the intervals (default 1000)."
            | Seed _ -> "seed of the authors' random grid subset and the bootstrap (default 0)."

type CompressArgs =
    | [<Mandatory>] Projector of safetensors: string
    | [<Mandatory>] Config of json: string
    | [<Mandatory>] Features of safetensors: string
    | [<Mandatory>] Out of safetensors: string
    | Device of name: string

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Projector _ -> "projector weights (mm_projector.* or model.mm_projector.* keys)."
            | Config _ -> "LLaVA-style config.json with the mm_* keys."
            | Features _ -> "safetensors with image_features (B,V0,mm_hidden_size) [, image_features_multi, text_features]."
            | Out _ -> "output safetensors: image_tokens (B, V, hidden_size), float32; nothing is written on error."
            | Device _ -> "auto | cpu | cuda (default cpu)."

type DescribeArgs =
    | Config of json: string
    | Preset of name: string
    | Compressor of kind: string
    | Visual_Tokens of count: int

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Config _ -> "LLaVA-style config.json with the mm_* keys: parameters per module and FLOPs per image of compressor and projector."
            | Preset _ -> "or a model preset (tiny, small, qwen1.5-0.5b, qwen1.5-4b, qwen1.5-7b, vicuna-7b)."
            | Compressor _ -> "with --preset: quecc | quecc_noquery | tokenpacker | avgpool | none (default quecc)."
            | Visual_Tokens _ -> "with --preset: output visual tokens (default 36)."

type InitModelArgs =
    | [<Mandatory>] Preset of name: string
    | Compressor of kind: string
    | Visual_Tokens of count: int
    | [<Mandatory>] Out of dir: string
    | Seed of seed: int
    | Vision_Tower of dir: string

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Vision_Tower _ -> "a CLIP vision folder (e.g. from pretrain-vision) to use instead of a random tower."
            | Preset _ -> "tiny | small (randomly initialised; the real-shape presets are configuration-only)."
            | Compressor _ -> "quecc | quecc_noquery | tokenpacker | avgpool | none (default quecc)."
            | Visual_Tokens _ -> "visual tokens after compression, a square whose side divides the patch grid (default 4; with --compressor none, the tower's patch count)."
            | Out _ -> "output folder (config.json, model.safetensors, tokenizer files, vision_tower/)."
            | Seed _ -> "initialisation seed (default 0)."

type GenerateArgs =
    | [<Mandatory>] Model of dir: string
    | Vision_Tower of dir: string
    | [<Mandatory>] Image of path: string
    | [<Mandatory>] Prompt of text: string
    | Max_New_Tokens of count: int
    | Temperature of t: float
    | Top_P of p: float
    | Seed of seed: int

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Model _ -> "LLaVA checkpoint folder (config.json, safetensors, tokenizer files)."
            | Vision_Tower _ -> "CLIP vision tower folder, when not inside the model folder."
            | Image _ -> "PNG or JPEG image."
            | Prompt _ -> "the user's question."
            | Max_New_Tokens _ -> "default 64."
            | Temperature _ -> "0 = greedy (default); > 0 samples."
            | Top_P _ -> "nucleus sampling mass (default 1)."
            | Seed _ -> "sampling seed (default 0)."

type MakeDataArgs =
    | [<Mandatory>] Kind of kind: string
    | [<Mandatory>] Count of count: int
    | Seed of seed: int
    | Eval_Count of count: int
    | [<Mandatory>] Out of dir: string

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Kind _ -> "shapes (visual reasoning: colour, shape, count, position) or ocr (rendered words and digits)."
            | Count _ -> "training samples."
            | Seed _ -> "seed (default 0); the same seed writes the same files."
            | Eval_Count _ -> "held-out samples in eval.json (default 0)."
            | Out _ -> "output folder: data.json, eval.json, images/."

type StageArg =
    | Pretrain
    | Finetune

type TrainArgs =
    | [<Mandatory>] Model of dir: string
    | Vision_Tower of dir: string
    | [<Mandatory>] Stage of StageArg
    | [<Mandatory>] Data of json: string
    | Images of dir: string
    | [<Mandatory>] Out of dir: string
    | Max_Steps of steps: int
    | Epochs of epochs: int
    | Batch_Size of size: int
    | Grad_Accum of steps: int
    | Lr of lr: float
    | Warmup_Ratio of ratio: float
    | Weight_Decay of wd: float
    | Max_Grad_Norm of norm: float
    | Save_Every of steps: int
    | Seed of seed: int
    | Device of name: string
    | Precision of mode: string
    | Pretrained_Projector of safetensors: string
    | Max_Length of tokens: int
    | Resume
    | Strict

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Model _ -> "model folder (init-model output or a LLaVA checkpoint)."
            | Vision_Tower _ -> "CLIP vision tower folder, when not the model's vision_tower/."
            | Stage _ -> "pretrain (projector + compressor only) or finetune (projector + LLM); the vision tower is frozen."
            | Data _ -> "LLaVA conversation JSON."
            | Images _ -> "folder the records' image paths are relative to (default: the JSON's folder)."
            | Out _ -> "output folder: checkpoints/, final/, metrics.jsonl, tensorboard/ (+ mm_projector.safetensors after pretrain)."
            | Max_Steps _ -> "optimizer steps (default: one epoch)."
            | Epochs _ -> "epochs when --max-steps is not given (default 1)."
            | Batch_Size _ -> "samples per micro-batch (default 8)."
            | Grad_Accum _ -> "micro-batches per optimizer step (default 1)."
            | Lr _ -> "peak learning rate (default 1e-3 pretrain, 2e-5 finetune, as the reference)."
            | Warmup_Ratio _ -> "linear warmup share of the steps, then cosine (default 0.03)."
            | Weight_Decay _ -> "AdamW weight decay (default 0)."
            | Max_Grad_Norm _ -> "global gradient-norm clip, 0 = none (default 1)."
            | Save_Every _ -> "checkpoint every K optimizer steps (default 100)."
            | Seed _ -> "seed of data order and initialisation (default 42)."
            | Device _ -> "auto | cpu | cuda (default auto: CUDA when the loaded runtime has it)."
            | Precision _ -> "auto | fp32 | bf16 (default auto: bf16 mixed precision on CUDA, fp32 on CPU)."
            | Pretrained_Projector _ -> "stage-1 mm_projector.safetensors to start stage 2 from."
            | Max_Length _ -> "longest sequence, visual tokens included (default 2048)."
            | Resume -> "continue from the newest complete checkpoint in --out."
            | Strict -> "stop at the first malformed record instead of skipping it."

type SweepArgs =
    | [<Mandatory>] Preset of name: string
    | [<Mandatory>] Out of dir: string
    | Jobs of count: int
    | Only of index: int
    | Collect
    | Emit_Slurm of path: string
    | Threads of count: int
    | Bootstrap of resamples: int
    | Devices of list: string
    | Time of limit: string
    | Partition of name: string
    | Mem of size: string
    | Gres of spec: string
    | Account of name: string
    | [<EqualsAssignmentOrSpaced>] Sbatch of option: string

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Devices _ -> "GPU indices for local jobs, e.g. 0,1: each job holds one (CUDA_VISIBLE_DEVICES); --jobs defaults to their count."
            | Time _ -> "with --emit-slurm: #SBATCH --time (e.g. 2:00:00 or 1-12)."
            | Partition _ -> "with --emit-slurm: #SBATCH --partition."
            | Mem _ -> "with --emit-slurm: #SBATCH --mem (e.g. 32G)."
            | Gres _ -> "with --emit-slurm: #SBATCH --gres (e.g. gpu:1, one GPU per array task)."
            | Account _ -> "with --emit-slurm: #SBATCH --account."
            | Sbatch _ -> "with --emit-slurm: any further sbatch option, verbatim (repeatable), e.g. --sbatch=--qos=high."
            | Preset _ -> "smoke | mini | a sweep JSON file (llms, compressors, visual_tokens, tasks, seeds, training)."
            | Out _ -> "output folder: data/, runs/<id>/, results.csv, summary.json, report.html."
            | Jobs _ -> "runs at a time, each in its own process (default 1: in this process)."
            | Only _ -> "run only run I (a Slurm array task); no report."
            | Collect -> "assemble results.csv and report.html from finished runs; run nothing."
            | Emit_Slurm _ -> "write a Slurm job-array script whose task i runs run i; run nothing."
            | Threads _ -> "torch threads per run (default: all cores / jobs)."
            | Bootstrap _ -> "bootstrap resamples for the report's intervals (default 200)."

type PlotMetricsArgs =
    | [<Mandatory; MainCommand>] Metrics of jsonl: string list
    | [<Mandatory>] Out of html: string
    | Title of text: string

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Metrics _ -> "one or more metrics.jsonl files written by `quecc train` (each drawn as its own curve)."
            | Out _ -> "output HTML (self-contained; a PNG beside it when chromium is on PATH)."
            | Title _ -> "figure title."

type EvalArgs =
    | [<Mandatory>] Model of dir: string
    | Vision_Tower of dir: string
    | [<Mandatory>] Questions of jsonl: string
    | [<Mandatory>] Images of dir: string
    | [<Mandatory>] Out of jsonl: string
    | Max_New_Tokens of count: int
    | Benchmark of name: string
    | Batch_Size of size: int

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Benchmark _ -> "add this benchmark's LLaVA-1.5 prompt suffix and use its decoding (vqav2, gqa, textvqa, vizwiz, pope, mme, scienceqa, mmbench, seed)."
            | Batch_Size _ -> "questions per forward pass, left-padded (default 1; greedy answers are the same at any size)."
            | Model _ -> "LLaVA checkpoint folder."
            | Vision_Tower _ -> "CLIP vision tower folder, when not inside the model folder."
            | Questions _ -> "LLaVA question file: one {\"question_id\", \"image\", \"text\"} per line; with \"answer\" (and \"category\") on every line, also blind/majority/per-category baselines."
            | Images _ -> "folder the questions' image paths are relative to."
            | Out _ -> "answers JSONL ({\"question_id\", \"prompt\", \"text\", \"model_id\", \"answer_id\"}), written atomically."
            | Max_New_Tokens _ -> "default 128 (1024 for scienceqa and mmbench, as LLaVA's scripts)."

type ScoreArgs =
    | [<Mandatory>] Benchmark of name: string
    | [<Mandatory>] Answers of jsonl: string
    | [<Mandatory>] Annotations of path: string
    | Vqa_Answers of rule: string
    | Submission of xlsx: string
    | Seed_Answers of rule: string
    | Json

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Benchmark _ -> "vqa | vqav2 | gqa | textvqa | vizwiz | pope | mc | scienceqa | mmbench | seed | mme."
            | Answers _ -> "answers JSONL as `quecc eval` (or LLaVA) writes them."
            | Annotations _ ->
                "ground truth, JSONL, one object per line, ids as numbers or strings. "
                + "VQAv2/TextVQA/VizWiz {question_id, answers: [10 strings or {answer}]} or the official JSON document; "
                + "GQA {question_id, answer}; POPE {question_id, label: yes|no, category?}; "
                + "ScienceQA {question_id, answer: letter or 0-based index, choices?: [..], image?: name|null}; "
                + "MMBench {question_id: TSV index (>= 1000000 = rotated copy), answer, options?: {A: ..}, category?}; "
                + "SEED {question_id, answer, question_type_id, data_type?: image|video} or SEED-Bench.json; "
                + "MME {question_id, subtask, image, label: yes|no}."
            | Seed_Answers _ -> "SEED answers: exact (default: the text equals the letter, as LLaVA's script) or first-letter (its first character)."
            | Submission _ -> "MMBench test split (no public answers): write the submission .xlsx as LLaVA's convert_mmbench_for_submission.py, --annotations being the question TSV; nothing is scored."
            | Vqa_Answers _ -> "VQAv2/VizWiz answers: llava (default: EvalAI answer processing first, as LLaVA submits) or raw (vqaEval.py on the text)."
            | Json -> "print JSON (headline plus breakdowns)."

type BenchCompressArgs =
    | Batch of size: int
    | Visual_Tokens of list: string
    | Iterations of count: int
    | Method of kind: string

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Batch _ -> "images per batch (default 16)."
            | Visual_Tokens _ -> "comma-separated output token counts (default 36,1)."
            | Iterations _ -> "timed iterations, median reported (default 3)."
            | Method _ -> "compressor (default quecc)."

type BenchPrefillArgs =
    | Preset of name: string
    | Visual_Tokens of list: string
    | Text_Tokens of count: int
    | Repeats of count: int
    | Decode_Tokens of count: int

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Preset _ -> "model preset (default small; qwen1.5-0.5b for a real-size LLM)."
            | Visual_Tokens _ -> "comma-separated visual-token counts (default 1,4,16,36,64,144,576)."
            | Text_Tokens _ -> "text tokens Q (default 50)."
            | Repeats _ -> "timed repetitions per point (default 3)."
            | Decode_Tokens _ -> "tokens decoded for the KV-cache comparison (default 16)."

type BenchTrainArgs =
    | Preset of name: string
    | Steps of steps: int
    | Batch_Size of size: int
    | Stage of StageArg
    | Repeats of rounds: int

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Preset _ -> "tiny | small (default tiny)."
            | Repeats _ -> "rounds of trainer + bare loop, alternating which goes first (default 3)."
            | Steps _ -> "timed optimizer steps (default 20)."
            | Batch_Size _ -> "samples per step (default 8)."
            | Stage _ -> "pretrain or finetune (default finetune)."

type BenchFitArgs =
    | Repeats of count: int
    | Json

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Repeats _ -> "timed repetitions after one warm-up (default 5)."
            | Json -> "print JSON."

type BenchLatencyArgs =
    | Preset of name: string
    | [<Mandatory>] Visual_Tokens of list: string
    | [<Mandatory>] Text_Tokens of count: int
    | Decode_Tokens of count: int
    | Repeats of count: int
    | Json

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Preset _ -> "model preset whose LLM is timed (default small; qwen1.5-0.5b for the 0.5B shape)."
            | Visual_Tokens _ -> "comma-separated visual-token counts V, e.g. 1,36,576."
            | Text_Tokens _ -> "text tokens Q."
            | Decode_Tokens _ -> "greedy tokens timed after each prefill (default 8)."
            | Repeats _ -> "timed repetitions per point, median reported (default 3)."
            | Json -> "print JSON (the input of `quecc frontier --cost measured:FILE`)."

type BenchEvalArgs =
    | Preset of name: string
    | Batch_Sizes of list: string
    | Questions of count: int
    | Max_New_Tokens of count: int

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Preset _ -> "tiny | small (default tiny), QueCC with 4 visual tokens, random weights."
            | Batch_Sizes _ -> "comma-separated batch sizes (default 1,8,32)."
            | Questions _ -> "questions answered at each batch size (default 64)."
            | Max_New_Tokens _ -> "answer length limit (default 8)."

type BenchArgs =
    | [<CliPrefix(CliPrefix.None)>] Latency of ParseResults<BenchLatencyArgs>
    | [<CliPrefix(CliPrefix.None)>] Eval of ParseResults<BenchEvalArgs>
    | [<CliPrefix(CliPrefix.None)>] Fit of ParseResults<BenchFitArgs>
    | [<CliPrefix(CliPrefix.None)>] Compress of ParseResults<BenchCompressArgs>
    | [<CliPrefix(CliPrefix.None)>] Prefill of ParseResults<BenchPrefillArgs>
    | [<CliPrefix(CliPrefix.None)>] Train of ParseResults<BenchTrainArgs>

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Latency _ -> "per V: time to first token, time per output token, KV-cache bytes; the QueCC query pass; decode against the memory-bandwidth bound."
            | Eval _ -> "questions/s of batched greedy answering at several batch sizes."
            | Fit _ -> "grid-search throughput (points/s) and continuous-fit time on the paper's data."
            | Compress _ -> "projector forward and forward+backward speed at the paper's dimensions vs the dense-matmul ceiling."
            | Prefill _ -> "prefill latency per visual-token count against 2·N·(Q+V), and decode tokens/s with and without KV cache."
            | Train _ -> "trainer samples/s against a bare forward/backward/step loop on the same batches, and peak memory."

type TokenizeArgs =
    | [<Mandatory>] Tokenizer of dir: string
    | Input of jsonl: string
    | No_Special_Tokens
    | Conversations of json: string
    | Template of name: string

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Tokenizer _ -> "Hugging Face tokenizer folder (tokenizer.json, vocab.json + merges.txt or tokenizer.model; tokenizer_config.json)."
            | Input _ -> "JSON lines {\"text\": …}: prints {\"ids\": […]} per line, Hugging Face's tokenizer(text).input_ids."
            | No_Special_Tokens -> "with --input: add_special_tokens=False (no BOS/EOS added)."
            | Conversations _ -> "LLaVA JSON records: prints {\"input_ids\", \"labels\", \"query_ids\"} per record (needs --template)."
            | Template _ -> "vicuna_v1 (LLaVA preprocess_v1), qwen_1_5 (LLaVA-NeXT preprocess_qwen) or plain (preprocess_plain)."

type PretrainVisionArgs =
    | [<Mandatory>] Out of dir: string
    | Preset of name: string
    | Images of count: int
    | Steps of count: int
    | Batch_Size of count: int
    | Lr of rate: float
    | Seed of seed: int

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Out _ -> "output folder: a Hugging Face CLIP vision folder (config.json, model.safetensors) plus stage0.json."
            | Preset _ -> "pairing preset whose tower is trained (default tiny; the sweep presets share it)."
            | Images _ -> "training images per kind, shapes and ocr (default 1024)."
            | Steps _ -> "optimizer steps (default 300)."
            | Batch_Size _ -> "images per step, half of each kind (default 16)."
            | Lr _ -> "peak learning rate (default 2e-3)."
            | Seed _ -> "seed of the images and the initialisation (default 0)."

[<HelpFlags("--help", "-h")>]
type QueccArgs =
    | [<CliPrefix(CliPrefix.None)>] Fit of ParseResults<FitArgs>
    | [<CliPrefix(CliPrefix.None)>] Frontier of ParseResults<FrontierArgs>
    | [<CliPrefix(CliPrefix.None)>] Reproduce of ParseResults<ReproduceArgs>
    | [<CliPrefix(CliPrefix.None)>] Compress of ParseResults<CompressArgs>
    | [<CliPrefix(CliPrefix.None)>] Describe of ParseResults<DescribeArgs>
    | [<CliPrefix(CliPrefix.None); CustomCommandLine("init-model")>] Init_Model of ParseResults<InitModelArgs>
    | [<CliPrefix(CliPrefix.None)>] Generate of ParseResults<GenerateArgs>
    | [<CliPrefix(CliPrefix.None); CustomCommandLine("make-data")>] Make_Data of ParseResults<MakeDataArgs>
    | [<CliPrefix(CliPrefix.None)>] Train of ParseResults<TrainArgs>
    | [<CliPrefix(CliPrefix.None)>] Sweep of ParseResults<SweepArgs>
    | [<CliPrefix(CliPrefix.None); CustomCommandLine("plot-metrics")>] Plot_Metrics of ParseResults<PlotMetricsArgs>
    | [<CliPrefix(CliPrefix.None)>] Eval of ParseResults<EvalArgs>
    | [<CliPrefix(CliPrefix.None)>] Score of ParseResults<ScoreArgs>
    | [<CliPrefix(CliPrefix.None)>] Bench of ParseResults<BenchArgs>
    | [<CliPrefix(CliPrefix.None)>] Tokenize of ParseResults<TokenizeArgs>
    | [<CliPrefix(CliPrefix.None); CustomCommandLine("pretrain-vision")>] Pretrain_Vision of ParseResults<PretrainVisionArgs>

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Tokenize _ -> "token ids of texts or of LLaVA conversations, exactly as Hugging Face and the reference preprocess functions give them."
            | Pretrain_Vision _ -> "stage 0: pretrain the tiny CLIP tower on the synthetic images (attribute prediction), as a CLIP folder."
            | Make_Data _ -> "write a synthetic benchmark (shapes or ocr) in LLaVA format, deterministic by seed."
            | Train _ -> "two-stage LLaVA training: pretrain (projector) or finetune (projector + LLM)."
            | Plot_Metrics _ -> "training-loss curves from metrics.jsonl files as a figure."
            | Sweep _ -> "a miniature scaling study: LLM sizes × compressors × visual tokens × task families, then the law per family."
            | Eval _ -> "answer a benchmark's questions (LLaVA question format) with a model."
            | Score _ -> "score answers with a benchmark's official metric."
            | Compress _ -> "run a trained projector (compressor + MLP) on cached CLIP features."
            | Describe _ -> "parameters per module and FLOPs per image of a projector config (or a model preset)."
            | Init_Model _ -> "write a randomly initialised LLaVA model folder (tiny/small presets)."
            | Generate _ -> "answer a prompt about an image with a LLaVA checkpoint."
            | Fit _ -> "fit the scaling law Y = A·N^-α·(V+q)^-β + D to a CSV."
            | Frontier _ -> "compute-optimal visual tokens and the (N, V) frontier over FLOPs budgets."
            | Reproduce _ -> "the paper's Figure 1 (Q = 0, 50), the OCR counterpart, parity and heatmap figures, summary.json/.md."
            | Bench _ -> "benchmarks."

// ---------------------------------------------------------------------------------------------
// Progress: a bar with rate and ETA on a terminal, a few plain lines otherwise (CI logs); see Progress.fs.

let progressReporter () : string -> int -> int -> unit = Progress.reporter ()

// ---------------------------------------------------------------------------------------------
// Output paths, checked before any work: a bad --out costs nothing and is named in one line.

/// A folder to write into, created when missing. A file in its place, or a place where no folder can be
/// created or written, is the user's to fix.
let outputFolder (flag: string) (path: string) =
    if File.Exists path then inputError "%s %s: is a file; expected a folder to write into (new or existing)" flag path
    try Directory.CreateDirectory path |> ignore
    with :? IOException | :? UnauthorizedAccessException as e -> inputError "%s %s: cannot create this folder (%s)" flag path (e.Message.Replace("\n", " "))
    let probe = Path.Combine(path, $".quecc-write-test-{Guid.NewGuid():N}")
    try
        File.WriteAllText(probe, "")
        File.Delete probe
    with :? IOException | :? UnauthorizedAccessException as e -> inputError "%s %s: cannot write into this folder (%s)" flag path (e.Message.Replace("\n", " "))

// ---------------------------------------------------------------------------------------------
// Verbs.

let private axisOf (lo, hi, count) : Axis = { Lo = lo; Hi = hi; Count = count }

let private gridOptionsOf (a: ParseResults<FitArgs>) =
    let g = paperGrid
    { Grid =
        { A = a.TryGetResult FitArgs.Grid_A |> Option.map axisOf |> Option.defaultValue g.A
          Alpha = a.TryGetResult FitArgs.Grid_Alpha |> Option.map axisOf |> Option.defaultValue g.Alpha
          Beta = a.TryGetResult FitArgs.Grid_Beta |> Option.map axisOf |> Option.defaultValue g.Beta
          D = a.TryGetResult FitArgs.Grid_D |> Option.map axisOf |> Option.defaultValue g.D }
      Fraction = a.GetResult(FitArgs.Grid_Fraction, defaultValue = 1.0)
      Seed = a.GetResult(FitArgs.Seed, defaultValue = 0) }

let private specOf (q: float option) =
    match q with
    | Some q when q < 0.0 -> inputError "--law-text-tokens %g: expected a count ≥ 0" q
    | Some q -> { LawTextTokens = q }
    | None -> defaultSpec

let private fitMethodOf (m: MethodArg) (grid: GridOptions) =
    match m with
    | MethodArg.Grid -> FitMethod.Grid grid
    | MethodArg.Continuous -> FitMethod.Continuous

let runFit (a: ParseResults<FitArgs>) =
    let path = a.GetResult FitArgs.Data
    let obs = load path (a.TryGetResult FitArgs.Task)
    let spec = specOf (a.TryGetResult FitArgs.Law_Text_Tokens)
    let grid = gridOptionsOf a
    let methodChoice = fitMethodOf (a.GetResult(FitArgs.Method, defaultValue = MethodArg.Grid)) grid
    let result =
        match methodChoice with
        | FitMethod.Grid g -> fitGrid spec g obs
        | FitMethod.Continuous ->
            let g = fitGrid spec { defaultGridOptions with Grid = grid.Grid } obs
            fitContinuousWith spec defaultContinuousOptions g.Params obs
    let boot =
        a.TryGetResult FitArgs.Bootstrap
        |> Option.map (fun b -> bootstrap spec methodChoice b grid.Seed 0.95 (progressReporter () "bootstrap" b) obs)
    let hold = a.TryGetResult FitArgs.Holdout_Llm |> Option.map (fun n -> holdout spec methodChoice n obs)
    if a.Contains FitArgs.Json then
        let node = Json.fit spec result boot
        hold |> Option.iter (fun h -> node["holdout"] <- Json.holdout h)
        if result.Method = "continuous" then node["atBounds"] <- Json.arr (atBounds obs result.Params |> List.map Json.str)
        printfn "%s" (Json.toText node)
    else
        let p = result.Params
        printfn "%s fit of %s (%d observations, T = V + %g)" result.Method path result.N spec.LawTextTokens
        printfn "  alpha = %.5f   beta = %.5f   A = %.5f   D = %.5f" p.Alpha p.Beta p.A p.D
        printfn "  SSE = %.6g   R² = %.5f   alpha/beta = %.2f" result.Sse result.R2 (p.Alpha / p.Beta)
        if result.Method = "continuous" then
            for note in atBounds obs p do
                printfn "  at a bound: %s" note
        boot
        |> Option.iter (fun b ->
            printfn "  95%% bootstrap intervals (%d resamples):" b.Resamples
            printfn "    alpha [%.5f, %.5f]   beta [%.5f, %.5f]" b.CiAlpha.Lo b.CiAlpha.Hi b.CiBeta.Lo b.CiBeta.Hi
            printfn "    A [%.5f, %.5f]   D [%.5f, %.5f]   alpha/beta [%.2f, %.2f]" b.CiA.Lo b.CiA.Hi b.CiD.Lo b.CiD.Hi b.AlphaOverBeta.Lo b.AlphaOverBeta.Hi)
        hold
        |> Option.iter (fun h ->
            printfn "  held-out %gB LLM: mean |relative error| %.2f%%, max %.2f%%" h.LlmParamsB (100.0 * h.MeanAbsRelativeError) (100.0 * h.MaxAbsRelativeError)
            for pt in h.Points do
                printfn "    V = %-4g observed %.4f predicted %.4f (%+.2f%%)" pt.VisualTokens pt.Observed pt.Predicted (100.0 * pt.RelativeError))
    0

let parseTokenSet (s: string) =
    s.Split(',', StringSplitOptions.RemoveEmptyEntries ||| StringSplitOptions.TrimEntries)
    |> Array.map (fun t ->
        match Double.TryParse(t, Globalization.NumberStyles.Float, Globalization.CultureInfo.InvariantCulture) with
        | true, v when v > 0.0 -> v
        | _ -> inputError "--tokens: '%s' is not a positive number; expected e.g. 1,4,16,36,64,144,576" t)
    |> List.ofArray

/// --cost flops | flops+query | measured:FILE.
let private costModelOf (spec: string) =
    match spec.Trim() with
    | s when s.ToLowerInvariant() = "flops" -> FlopsCost
    | s when s.ToLowerInvariant() = "flops+query" -> FlopsPlusQuery
    | s when s.StartsWith("measured:", StringComparison.OrdinalIgnoreCase) ->
        let path = s.Substring "measured:".Length
        if not (File.Exists path) then inputError "--cost %s: file %s not found; expected the output of `quecc bench latency --json`" spec path
        MeasuredLatency(parseMeasuredCost path (File.ReadAllText path))
    | _ -> inputError "--cost %s: expected flops, flops+query or measured:FILE" spec

let runFrontier (a: ParseResults<FrontierArgs>) =
    let path = a.GetResult FrontierArgs.Data
    let obs = load path (a.TryGetResult FrontierArgs.Task)
    let spec = specOf (a.TryGetResult FrontierArgs.Law_Text_Tokens)
    let q = a.GetResult FrontierArgs.Text_Tokens
    if q < 0.0 then inputError "--text-tokens %g: expected a count ≥ 0" q
    let result =
        match a.GetResult(FrontierArgs.Method, defaultValue = MethodArg.Continuous) with
        | MethodArg.Grid -> fitGrid spec defaultGridOptions obs
        | MethodArg.Continuous -> fitContinuous spec obs
    let tokenSet = a.TryGetResult FrontierArgs.Tokens |> Option.map parseTokenSet |> Option.defaultValue paperTokenSet
    let count = a.GetResult(FrontierArgs.Budgets, defaultValue = 25)
    if count < 2 then inputError "--budgets %d: expected at least 2" count
    let sizes = obs |> List.map (fun o -> o.LlmParamsB)
    let vs = obs |> List.map (fun o -> o.VisualTokens)
    let cost = a.TryGetResult FrontierArgs.Cost |> Option.map costModelOf |> Option.defaultValue FlopsCost
    let budgets = budgetsFor cost q tokenSet (List.min sizes * 0.6) (List.max sizes * 3.0) count
    let points = frontierUnder cost spec result.Params q tokenSet budgets
    let vStar = optimalVisualTokens spec result.Params q (min 1.0 (List.min vs)) (List.max vs)
    if a.Contains FrontierArgs.Json then
        Json.obj [ "textTokens", Json.num q
                   "cost", Json.str (CostModel.name cost)
                   "budgetUnit", Json.str (CostModel.unit cost)
                   "fit", Json.fit spec result None
                   "optimalVisualTokens", Json.optimal vStar
                   "optimalVisualTokensKind", Json.str (Json.optimalKind vStar)
                   "frontier", Json.arr (points |> List.map Json.frontierPoint) ]
        |> Json.toText
        |> printfn "%s"
    else
        printfn "%s fit: alpha = %.5f, beta = %.5f; Q = %g text tokens" result.Method result.Params.Alpha result.Params.Beta q
        printfn "optimal visual tokens V* = %.3f (%s)" vStar.Value (Json.optimalKind vStar)
        printfn "cost model %s" (CostModel.name cost)
        printfn "%14s %12s %8s %10s" ("budget " + CostModel.unit cost) "LLM (B)" "V" "error"
        for p in points do
            printfn "%14.4g %12.4f %8g %10.5f" p.Budget p.LlmParamsB p.VisualTokens p.Error
    0

let runReproduce (a: ParseResults<ReproduceArgs>) =
    let outDir = a.GetResult(ReproduceArgs.Out, defaultValue = "reproduce-out")
    outputFolder "--out" outDir
    let settings =
        { defaultSettings with
            Bootstrap = a.GetResult(ReproduceArgs.Bootstrap, defaultValue = defaultSettings.Bootstrap)
            Seed = a.GetResult(ReproduceArgs.Seed, defaultValue = 0) }
    let sw = Stopwatch.StartNew()
    let fams, files = run settings outDir (eprintfn "%s") (progressReporter ())
    for f in fams do
        let c = f.Continuous.Params
        let vstars = f.OptimalV |> List.map (fun (q, o) -> sprintf "V*(Q=%g) = %.3g" q o.Value) |> String.concat ", "
        printfn "%-18s alpha = %.4f [%.4f, %.4f]  beta = %.4f [%.4f, %.4f]  alpha/beta = %.2f  %s"
            f.Name c.Alpha f.Bootstrap.CiAlpha.Lo f.Bootstrap.CiAlpha.Hi c.Beta f.Bootstrap.CiBeta.Lo f.Bootstrap.CiBeta.Hi (c.Alpha / c.Beta) vstars
    printfn "wrote %d figure files, summary.json and summary.md to %s in %.1f s" files.Length (Path.GetFullPath outDir) sw.Elapsed.TotalSeconds
    0

let private median (xs: float list) = quantile 0.5 (Array.ofList xs)

let runBenchFit (a: ParseResults<BenchFitArgs>) =
    let repeats = a.GetResult(BenchFitArgs.Repeats, defaultValue = 5)
    if repeats < 1 then inputError "--repeats %d: expected at least 1" repeats
    let obs =
        match findRepoFile (Path.Combine("data", "paper", "visual_reasoning.csv")) with
        | Some p -> load p None
        | None -> inputError "data/paper/visual_reasoning.csv not found; run from the repository"
    let time f =
        f () |> ignore
        [ for _ in 1 .. repeats ->
              let sw = Stopwatch.StartNew()
              f () |> ignore
              sw.Elapsed.TotalSeconds ]
    let gridT = time (fun () -> fitGrid defaultSpec defaultGridOptions obs)
    let grid = fitGrid defaultSpec defaultGridOptions obs
    let contT = time (fun () -> fitContinuousWith defaultSpec defaultContinuousOptions grid.Params obs)
    let bootT =
        let sw = Stopwatch.StartNew()
        bootstrap defaultSpec FitMethod.Continuous 1000 0 0.95 ignore obs |> ignore
        sw.Elapsed.TotalSeconds
    let points = float paperGrid.Size
    let gridMedian = median gridT
    let pointsPerS = points / gridMedian
    let threads = TorchSharp.torch.get_num_threads ()
    if a.Contains BenchFitArgs.Json then
        Json.obj [ "gridPoints", Json.num points
                   "gridSeconds", Json.num gridMedian
                   "gridPointsPerSecond", Json.num pointsPerS
                   "continuousSeconds", Json.num (median contT)
                   "bootstrap1000ContinuousSeconds", Json.num bootT
                   "repeats", Json.num (float repeats)
                   "threads", Json.num (float threads) ]
        |> Json.toText
        |> printfn "%s"
    else
        printfn "quecc bench fit (paper visual-reasoning data, 28 observations, %d torch threads, median of %d)" threads repeats
        printfn "  grid search, exhaustive     %10.0f points in %7.3f s = %.3g points/s" points gridMedian pointsPerS
        printfn "  continuous fit (13 starts)  %7.3f s" (median contT)
        printfn "  bootstrap, 1000 continuous  %7.3f s" bootT
    0

let private parseInts (flag: string) (s: string) =
    s.Split(',', StringSplitOptions.RemoveEmptyEntries ||| StringSplitOptions.TrimEntries)
    |> Array.map (fun t ->
        match Int32.TryParse t with
        | true, v when v > 0 -> v
        | _ -> inputError "%s: '%s' is not a positive integer; expected a comma-separated list such as 36,1" flag t)

let runCompress (a: ParseResults<CompressArgs>) =
    let shape =
        QueCC.Model.Commands.ProjectorTools.Compress(
            a.GetResult CompressArgs.Projector, a.GetResult CompressArgs.Config, a.GetResult CompressArgs.Features,
            a.GetResult CompressArgs.Out, a.GetResult(CompressArgs.Device, defaultValue = "cpu"))
    printfn "wrote image_tokens %A to %s" shape (a.GetResult CompressArgs.Out)
    0

let runDescribe (a: ParseResults<DescribeArgs>) =
    let config =
        match a.TryGetResult DescribeArgs.Config, a.TryGetResult DescribeArgs.Preset with
        | Some path, None -> QueCC.Model.Compression.ProjectorConfig.Load path
        | None, Some preset ->
            let p = QueCC.Model.Presets.Presets.Get preset
            let cfg =
                QueCC.Model.Commands.LlavaEntryPoints.BuildConfig(
                    p, a.GetResult(DescribeArgs.Compressor, defaultValue = "quecc"), a.GetResult(DescribeArgs.Visual_Tokens, defaultValue = 36))
            printfn "preset %s: LLM %s parameters" preset (p.Text.ParameterCount().ToString("N0"))
            cfg.Projector
        | _ -> inputError "describe: give exactly one of --config FILE or --preset NAME"
    printfn "%s" ((QueCC.Model.Commands.ProjectorTools.Describe config).Format())
    0

let runInitModel (a: ParseResults<InitModelArgs>) =
    let compressor = a.GetResult(InitModelArgs.Compressor, defaultValue = "quecc")
    // Without a compressor every patch is a visual token, so the count follows from the preset's tower.
    let visualTokens =
        match a.TryGetResult InitModelArgs.Visual_Tokens with
        | Some v -> v
        | None when compressor.Trim().ToLowerInvariant() = "none" -> (QueCC.Model.Presets.Presets.Get(a.GetResult InitModelArgs.Preset)).Vision.NumPatches
        | None -> 4
    let dir =
        QueCC.Model.Commands.LlavaEntryPoints.InitModel(
            a.GetResult InitModelArgs.Preset, compressor, visualTokens, a.GetResult InitModelArgs.Out,
            int64 (a.GetResult(InitModelArgs.Seed, defaultValue = 0)), Option.toObj (a.TryGetResult InitModelArgs.Vision_Tower))
    match a.TryGetResult InitModelArgs.Vision_Tower with
    | Some t -> printfn "wrote a %s model (random LLM and projector, vision tower from %s) to %s" (a.GetResult InitModelArgs.Preset) t (Path.GetFullPath dir)
    | None -> printfn "wrote a randomly initialised %s model to %s" (a.GetResult InitModelArgs.Preset) (Path.GetFullPath dir)
    0

let runGenerate (a: ParseResults<GenerateArgs>) =
    let temperature = a.GetResult(GenerateArgs.Temperature, defaultValue = 0.0)
    if temperature < 0.0 then inputError "--temperature %g: expected ≥ 0 (0 = greedy)" temperature
    let topP = a.GetResult(GenerateArgs.Top_P, defaultValue = 1.0)
    if not (topP > 0.0 && topP <= 1.0) then inputError "--top-p %g: expected a value in (0, 1]" topP
    let maxNew = a.GetResult(GenerateArgs.Max_New_Tokens, defaultValue = 64)
    if maxNew < 1 then inputError "--max-new-tokens %d: expected at least 1" maxNew
    let answer =
        QueCC.Model.Commands.LlavaEntryPoints.Generate(
            a.GetResult GenerateArgs.Model, a.TryGetResult GenerateArgs.Vision_Tower |> Option.toObj, a.GetResult GenerateArgs.Image,
            a.GetResult GenerateArgs.Prompt, maxNew, temperature, int64 (a.GetResult(GenerateArgs.Seed, defaultValue = 0)), topP)
    printfn "%s" answer
    0

let runMakeData (a: ParseResults<MakeDataArgs>) =
    let path =
        QueCC.Model.Data.SyntheticData.Make(
            a.GetResult MakeDataArgs.Kind, a.GetResult MakeDataArgs.Count, a.GetResult(MakeDataArgs.Seed, defaultValue = 0),
            a.GetResult(MakeDataArgs.Eval_Count, defaultValue = 0), a.GetResult MakeDataArgs.Out)
    printfn "wrote %s" path
    0

let private stageName (s: StageArg) = match s with StageArg.Pretrain -> "pretrain" | StageArg.Finetune -> "finetune"

let runTrain (a: ParseResults<TrainArgs>) =
    let opts =
        QueCC.Model.Training.TrainOptions(
            ModelDir = a.GetResult TrainArgs.Model,
            VisionTowerDir = (a.TryGetResult TrainArgs.Vision_Tower |> Option.toObj),
            Stage = stageName (a.GetResult TrainArgs.Stage),
            DataJson = a.GetResult TrainArgs.Data,
            ImagesDir = (a.TryGetResult TrainArgs.Images |> Option.toObj),
            OutDir = a.GetResult TrainArgs.Out,
            MaxSteps = (a.TryGetResult TrainArgs.Max_Steps |> Option.toNullable),
            Epochs = a.GetResult(TrainArgs.Epochs, defaultValue = 1),
            BatchSize = a.GetResult(TrainArgs.Batch_Size, defaultValue = 8),
            GradAccum = a.GetResult(TrainArgs.Grad_Accum, defaultValue = 1),
            Lr = (a.TryGetResult TrainArgs.Lr |> Option.toNullable),
            WarmupRatio = a.GetResult(TrainArgs.Warmup_Ratio, defaultValue = 0.03),
            WeightDecay = a.GetResult(TrainArgs.Weight_Decay, defaultValue = 0.0),
            MaxGradNorm = a.GetResult(TrainArgs.Max_Grad_Norm, defaultValue = 1.0),
            SaveEvery = a.GetResult(TrainArgs.Save_Every, defaultValue = 100),
            Seed = a.GetResult(TrainArgs.Seed, defaultValue = 42),
            Device = a.GetResult(TrainArgs.Device, defaultValue = "auto"),
            Precision = a.GetResult(TrainArgs.Precision, defaultValue = "auto"),
            PretrainedProjector = (a.TryGetResult TrainArgs.Pretrained_Projector |> Option.toObj),
            MaxLength = a.GetResult(TrainArgs.Max_Length, defaultValue = 2048),
            Resume = a.Contains TrainArgs.Resume,
            Strict = a.Contains TrainArgs.Strict)
    // Bound once: `Action<_>(f ())` would call `f ()` on every invocation, a new bar per step.
    let progress = Progress.trainReporterWith Progress.terminalColumns (fun s -> eprintfn "%s" s)
    let outExisted = Directory.Exists opts.OutDir
    let r =
        try QueCC.Model.Training.Trainer.Train(opts, Action<_>(progress), Action<string>(eprintfn "%s"))
        with _ ->
            // A run that failed before its first step leaves nothing worth keeping: no --out folder it created.
            let metrics = Path.Combine(opts.OutDir, "metrics.jsonl")
            let checkpoints = Path.Combine(opts.OutDir, "checkpoints")
            let stepsDone = (File.Exists metrics && FileInfo(metrics).Length > 0L) || Directory.Exists checkpoints
            if not outExisted && not stepsDone && Directory.Exists opts.OutDir then
                try Directory.Delete(opts.OutDir, true) with _ -> ()
            reraise ()
    printfn "trained %d/%d steps%s: loss %.4f → %.4f in %.1f s; metrics %s%s%s"
        r.Steps r.TotalSteps (match Option.ofNullable r.ResumedFromStep with Some s -> sprintf " (resumed from step %d)" s | None -> "")
        r.FirstLoss r.LastLoss r.TrainSeconds r.MetricsPath
        (match r.FinalDir with null -> "" | d -> "; final model " + d)
        (match r.ProjectorFile with null -> "" | f -> "; projector " + f)
    0

let runSweep (a: ParseResults<SweepArgs>) =
    let presetArg = a.GetResult SweepArgs.Preset
    let spec = Sweep.resolve presetArg
    let out = a.GetResult SweepArgs.Out
    let runs = Sweep.expand spec
    let devices = a.TryGetResult SweepArgs.Devices |> Option.map Sweep.parseDevices |> Option.defaultValue []
    let jobs = a.GetResult(SweepArgs.Jobs, defaultValue = max 1 devices.Length)
    if jobs < 1 then inputError "--jobs %d: expected at least 1" jobs
    if not devices.IsEmpty && jobs > devices.Length then
        inputError "--jobs %d with --devices %s: expected at most one job per device (--jobs %d or fewer)" jobs (String.Join(",", devices)) devices.Length
    let slurm: Sweep.SlurmOptions =
        { Time = a.TryGetResult SweepArgs.Time
          Partition = a.TryGetResult SweepArgs.Partition
          Mem = a.TryGetResult SweepArgs.Mem
          Gres = a.TryGetResult SweepArgs.Gres
          Account = a.TryGetResult SweepArgs.Account
          Extra = a.GetResults SweepArgs.Sbatch }
    Sweep.validateSlurm slurm
    let threads = a.GetResult(SweepArgs.Threads, defaultValue = max 1 (Environment.ProcessorCount / jobs))
    if threads < 1 then inputError "--threads %d: expected at least 1" threads
    TorchSharp.torch.set_num_threads threads
    let bootstrapB = a.GetResult(SweepArgs.Bootstrap, defaultValue = 200)
    let report () =
        let results, fits, comparisons = SweepReport.collect spec out bootstrapB
        let ok = results |> List.filter (fun r -> r.Score.IsSome) |> List.length
        printfn "sweep %s: %d/%d runs finished, %d failed" spec.Name ok runs.Length (results.Length - ok)
        for f in fits do
            match f.Fit with
            | Ok(fit, b, vstar) ->
                printfn "  %-7s %-14s alpha = %.4f [%.4f, %.4f]  beta = %.4f [%.4f, %.4f]  V*(Q=50) = %.3g"
                    f.Task f.Compressor fit.Params.Alpha b.CiAlpha.Lo b.CiAlpha.Hi fit.Params.Beta b.CiBeta.Lo b.CiBeta.Hi
                    (vstar |> List.find (fun (q, _) -> q = 50.0) |> snd).Value
            | Error e -> printfn "  %-7s %-14s no fit: %s" f.Task f.Compressor e
        for c in comparisons do
            printfn "  %-7s V=%d  quecc %.3f vs avgpool %.3f  (difference 95%% CI [%+.3f, %+.3f], %d pairs)" c.Task c.VisualTokens c.QueccMean c.AvgpoolMean c.Difference.Lo c.Difference.Hi c.Pairs
        printfn "wrote %s, %s and %s" (Path.Combine(out, "results.csv")) (Path.Combine(out, "summary.json")) (Path.Combine(out, "report.html"))
        0
    match a.TryGetResult SweepArgs.Emit_Slurm, a.TryGetResult SweepArgs.Only, a.Contains SweepArgs.Collect with
    | Some path, _, _ ->
        Sweep.writeSpec out spec
        Directory.CreateDirectory(Path.Combine(out, "slurm")) |> ignore
        let full = Path.GetFullPath path
        Directory.CreateDirectory(Path.GetDirectoryName full) |> ignore
        Reproduce.writeAtomically full (Sweep.slurmScriptWith slurm spec presetArg out runs.Length threads)
        printfn "wrote %s: a %d-task job array; submit with sbatch, then: quecc sweep --preset %s --out %s --collect" full runs.Length presetArg out
        0
    | None, Some i, _ ->
        let run =
            runs |> List.tryFind (fun r -> r.Index = i)
            |> Option.defaultWith (fun () -> inputError "--only %d: the sweep has runs 0..%d" i (runs.Length - 1))
        Sweep.writeSpec out spec
        if Sweep.isFinished out run then
            printfn "run %d (%s) already finished" i run.Id
            0
        else
            let r = Sweep.executeRun spec out run
            match r.Score with
            | Some s -> printfn "run %d (%s): score %.3f in %.1f s" i run.Id s r.Seconds; 0
            | None -> eprintfn "run %d (%s) failed: %s" i run.Id (defaultArg r.Error ""); 1
    | None, None, true -> report ()
    | None, None, false ->
        Sweep.writeSpec out spec
        let todo = runs |> List.filter (fun r -> not (Sweep.isFinished out r))
        printfn "sweep %s: %d runs, %d to do (%d finished before), %d at a time" spec.Name runs.Length todo.Length (runs.Length - todo.Length) jobs
        let progress = progressReporter ()
        progress "sweep" (max 1 todo.Length) 0
        let mutable completed = 0
        let tick () =
            completed <- completed + 1
            progress "sweep" (max 1 todo.Length) completed
        if jobs = 1 && devices.IsEmpty then
            for r in todo do
                Sweep.executeRun spec out r |> ignore
                tick ()
        else
            // Each run in its own process, exactly as a Slurm array task runs it (and on its own device).
            let lockObj = obj ()
            let commands = todo |> List.map (fun r -> Sweep.selfCommand () @ [ "sweep"; "--preset"; presetArg; "--out"; out; "--only"; string r.Index; "--threads"; string threads ])
            Sweep.runLocalJobs jobs devices commands (fun _ -> lock lockObj tick) |> ignore
        report ()

/// Reads (step, loss) from a metrics.jsonl; `path` names the file in errors. The trainer writes a non-finite
/// loss as null, so such steps are left out rather than rejected.
let readMetrics (path: string) =
    if Directory.Exists path then inputError "%s: is a folder; expected the metrics.jsonl a `quecc train` run writes (e.g. %s)" path (Path.Combine(path, "metrics.jsonl"))
    if not (File.Exists path) then inputError "%s: metrics file not found; expected the metrics.jsonl a `quecc train` run writes" path
    let field (n: int) (o: Text.Json.Nodes.JsonObject) (name: string) (expected: string) (read: Text.Json.Nodes.JsonValue -> 'T option) =
        let mutable node: Text.Json.Nodes.JsonNode = null
        match o.TryGetPropertyValue(name, &node), node with
        | false, _ -> inputError "%s:%d: missing \"%s\"; expected {\"step\": <int>, \"loss\": <number>, ...}" path n name
        | true, null -> None
        | true, v ->
            match box v with
            | :? Text.Json.Nodes.JsonValue as jv when (read jv).IsSome -> read jv
            | _ -> inputError "%s:%d: \"%s\" is %s; expected %s" path n name (v.ToJsonString()) expected
    let asInt (v: Text.Json.Nodes.JsonValue) = match v.TryGetValue<int>() with | true, i -> Some i | _ -> None
    let asFloat (v: Text.Json.Nodes.JsonValue) = match v.TryGetValue<float>() with | true, x -> Some x | _ -> None
    let rows =
        File.ReadAllLines path
        |> Array.mapi (fun i l -> i + 1, l)
        |> Array.filter (fun (_, l) -> l.Trim() <> "")
        |> Array.choose (fun (n, l) ->
            let o =
                match (try Some(Text.Json.Nodes.JsonNode.Parse l) with _ -> None) with
                | Some(:? Text.Json.Nodes.JsonObject as o) -> o
                | _ -> inputError "%s:%d: not a JSON object; expected {\"step\": <int>, \"loss\": <number>, ...}" path n
            let step = field n o "step" "an integer step" asInt
            let loss = field n o "loss" "a number" asFloat
            match step, loss with
            | Some s, Some l when Double.IsFinite l -> Some(s, l)
            | None, _ -> inputError "%s:%d: \"step\" is null; expected an integer step" path n
            | _ -> None)
    if rows.Length = 0 then inputError "%s: no steps with a finite loss" path
    rows

let runPlotMetrics (a: ParseResults<PlotMetricsArgs>) =
    let files = a.GetResult PlotMetricsArgs.Metrics
    // A run is named by its folder (OUT/metrics.jsonl), or by the file name when folders repeat.
    let folderOf (f: string) = Path.GetFileName(Path.GetDirectoryName(Path.GetFullPath f))
    let byFolder = (files |> List.map folderOf |> List.distinct |> List.length) = files.Length
    let curves =
        files
        |> List.map (fun f ->
            let rows = readMetrics f
            let name = if byFolder then folderOf f else Path.GetFileNameWithoutExtension f
            ({ Name = name; Steps = rows |> Array.map fst |> List.ofArray; Losses = rows |> Array.map snd |> List.ofArray }: Figures.TrainingCurve))
    let out = a.GetResult PlotMetricsArgs.Out
    // --out names the figure; its extension says which file must exist afterwards (all four are written
    // when Chromium is on PATH, the HTML alone otherwise).
    let full = Path.GetFullPath out
    let ext = Path.GetExtension(full).ToLowerInvariant()
    let stem = if List.contains ext [ ".html"; ".png"; ".svg"; ".pdf" ] then Path.ChangeExtension(full, null) else full
    let folder = Path.GetDirectoryName full
    outputFolder "--out" folder
    let writer = Reproduce.FigureWriter(folder, eprintfn "%s")
    if List.contains ext [ ".png"; ".svg"; ".pdf" ] && not writer.CanExportStatic then
        inputError "--out %s: a %s needs chromium on PATH (apt-get install chromium); expected a .html name, or chromium installed" out (ext.TrimStart('.').ToUpperInvariant())
    writer.Save(Path.GetFileName stem, Figures.trainingCurves (a.GetResult(PlotMetricsArgs.Title, defaultValue = "Training loss")) curves)
    let written = writer.Written
    let wanted = if ext = "" || not (List.contains ext [ ".html"; ".png"; ".svg"; ".pdf" ]) then stem + ".html" else full
    if not (File.Exists wanted) then
        inputError "--out %s: chromium could not render the figure (the HTML is at %s)" out (stem + ".html")
    for c in curves do
        let first = List.head c.Losses
        let tail = c.Losses |> List.skip (max 0 (c.Losses.Length - 50))
        printfn "%s: %d steps, loss %.3f at step %d, mean of the last %d steps %.3f, minimum %.3f" c.Name c.Steps.Length first (List.head c.Steps) tail.Length (List.average tail) (List.min c.Losses)
    printfn "wrote %s" (String.Join(", ", written))
    0

/// When every question line carries its ground truth ("answer", optional "category"), `eval` also answers with grey
/// images and reports accuracy, blind accuracy, the majority baseline and accuracy per category.
let evalBaselines (a: ParseResults<EvalArgs>) (settings: Evaluation.EvalSettings) (report: string -> int -> int -> unit) =
    let questions = a.GetResult EvalArgs.Questions
    let text = File.ReadAllText questions
    let key = Evaluation.parseAnswerKey questions text
    let n = (Evaluation.parseQuestions questions text).Length
    if key.Count = n then
        let out = a.GetResult EvalArgs.Out
        let blindOut = Path.ChangeExtension(out, ".blind.jsonl")
        Evaluation.evaluateBlindWith settings
            (a.GetResult EvalArgs.Model) (a.TryGetResult EvalArgs.Vision_Tower) questions (a.GetResult EvalArgs.Images)
            blindOut (fun done' total -> report "eval (grey images)" total done')
        let read f = ScoringIO.parseAnswers f (File.ReadAllText f)
        let b = Evaluation.baselineReport Sweep.answerMatches Scoring.normalizeGqa key (read out) (read blindOut)
        let jsonOut = Path.ChangeExtension(out, ".baselines.json")
        Reproduce.writeAtomically jsonOut ((Evaluation.baselineJson b).ToJsonString(Text.Json.JsonSerializerOptions(WriteIndented = true)))
        printfn "%d questions: accuracy %.3f, blind (grey images) %.3f, majority answer %.3f" b.Questions b.Score b.BlindScore b.MajorityScore
        for KeyValue(c, acc) in b.ByType do
            printfn "  %-14s accuracy %.3f  blind %.3f  majority %.3f" c acc b.BlindByType[c] b.MajorityByType[c]
        printfn "wrote blind answers to %s and the summary to %s" blindOut jsonOut
    elif key.Count > 0 then
        printfn "%d of %d questions carry an \"answer\"; baselines need it on every line (skipped)" key.Count n

let runPretrainVision (a: ParseResults<PretrainVisionArgs>) =
    let opts =
        QueCC.Model.Training.VisionPretrainOptions(
            OutDir = a.GetResult PretrainVisionArgs.Out,
            Preset = a.GetResult(PretrainVisionArgs.Preset, defaultValue = "tiny"),
            ImagesPerKind = a.GetResult(PretrainVisionArgs.Images, defaultValue = 1024),
            Steps = a.GetResult(PretrainVisionArgs.Steps, defaultValue = 300),
            BatchSize = a.GetResult(PretrainVisionArgs.Batch_Size, defaultValue = 16),
            Lr = a.GetResult(PretrainVisionArgs.Lr, defaultValue = 2e-3),
            Seed = a.GetResult(PretrainVisionArgs.Seed, defaultValue = 0))
    let r = QueCC.Model.Training.VisionPretrain.Run(opts, Action<string>(eprintfn "%s"))
    printfn "stage 0: %d steps in %.0f s, loss %.3f → %.3f; held-out accuracy: cell colour %.3f, cell shape %.3f, quadrant word %.3f, whole word %.3f"
        r.Steps r.Seconds r.FirstLoss r.LastLoss r.CellColorAccuracy r.CellShapeAccuracy r.QuadrantWordAccuracy r.WholeWordAccuracy
    printfn "wrote the vision tower to %s" r.TowerDir
    0

let runEval (a: ParseResults<EvalArgs>) =
    let maxNew = a.TryGetResult EvalArgs.Max_New_Tokens
    match maxNew with
    | Some m when m < 1 -> inputError "--max-new-tokens %d: expected at least 1" m
    | _ -> ()
    let batch = a.GetResult(EvalArgs.Batch_Size, defaultValue = 1)
    if batch < 1 then inputError "--batch-size %d: expected at least 1" batch
    let benchmark =
        a.TryGetResult EvalArgs.Benchmark
        |> Option.map (fun name ->
            match name.Trim().ToLowerInvariant() with
            | "mc" -> Scoring.Benchmark.ScienceQa
            | other ->
                Scoring.Benchmark.tryParse other
                |> Option.defaultWith (fun () -> inputError "--benchmark %s: expected one of vqav2, gqa, textvqa, vizwiz, pope, mme, scienceqa, mmbench, seed" name))
    let questions = a.GetResult EvalArgs.Questions
    let report = progressReporter ()
    let settings: Evaluation.EvalSettings = { Benchmark = benchmark; MaxNewTokens = maxNew; BatchSize = batch }
    Evaluation.evaluateWith settings
        (a.GetResult EvalArgs.Model) (a.TryGetResult EvalArgs.Vision_Tower) questions (a.GetResult EvalArgs.Images)
        (a.GetResult EvalArgs.Out) (fun done' total -> report "eval" total done')
    printfn "wrote answers to %s" (a.GetResult EvalArgs.Out)
    evalBaselines a settings report
    0

let runScore (a: ParseResults<ScoreArgs>) =
    let name = a.GetResult ScoreArgs.Benchmark
    let benchmark =
        match name.Trim().ToLowerInvariant() with
        | "mc" -> Some Scoring.Benchmark.ScienceQa
        | other -> Scoring.Benchmark.tryParse other
        |> Option.defaultWith (fun () ->
            inputError "--benchmark %s: expected one of vqa, vqav2, gqa, textvqa, vizwiz, pope, mc, scienceqa, mmbench, seed, mme" name)
    match a.TryGetResult ScoreArgs.Submission with
    | Some xlsx ->
        if benchmark <> Scoring.MmBench then inputError "--submission is for --benchmark mmbench; got %s" name
        let tsv = a.GetResult ScoreArgs.Annotations
        if not (File.Exists tsv) then inputError "%s: file not found; expected MMBench's question TSV" tsv
        let answersPath = a.GetResult ScoreArgs.Answers
        if not (File.Exists answersPath) then inputError "%s: file not found" answersPath
        let rows = ScoringIO.mmbenchSubmission tsv (File.ReadAllText tsv) (ScoringIO.parseAnswers answersPath (File.ReadAllText answersPath))
        ScoringIO.writeXlsx xlsx rows
        printfn "wrote %s (%d questions)" xlsx (rows.Length - 1)
        0
    | None ->
    let vqa =
        match a.TryGetResult ScoreArgs.Vqa_Answers |> Option.map (fun s -> s.Trim().ToLowerInvariant()) with
        | None
        | Some "llava" -> Scoring.LlavaSubmission
        | Some "raw" -> Scoring.RawText
        | Some other -> inputError "--vqa-answers %s: expected llava or raw" other
    let seed =
        match a.TryGetResult ScoreArgs.Seed_Answers |> Option.map (fun s -> s.Trim().ToLowerInvariant()) with
        | None
        | Some "exact" -> Scoring.ExactText
        | Some "first-letter" -> Scoring.FirstLetter
        | Some other -> inputError "--seed-answers %s: expected exact or first-letter" other
    let report = ScoringIO.scoreFilesWith { Vqa = vqa; Seed = seed } benchmark (a.GetResult ScoreArgs.Answers) (a.GetResult ScoreArgs.Annotations)
    if a.Contains ScoreArgs.Json then printfn "%s" (Json.toText (ScoringIO.toJson report))
    else printfn "%s" (ScoringIO.toText report)
    0

let runBenchCompress (a: ParseResults<BenchCompressArgs>) =
    let tokens = a.TryGetResult BenchCompressArgs.Visual_Tokens |> Option.map (parseInts "--visual-tokens") |> Option.defaultValue [| 36; 1 |]
    let result =
        QueCC.Model.Commands.CompressBenchmark.Run(
            a.GetResult(BenchCompressArgs.Batch, defaultValue = 16), tokens, a.GetResult(BenchCompressArgs.Iterations, defaultValue = 3),
            Action<string>(eprintfn "%s"), a.GetResult(BenchCompressArgs.Method, defaultValue = "quecc"))
    printfn "%s" (result.Format())
    0

let runBenchPrefill (a: ParseResults<BenchPrefillArgs>) =
    let preset = a.GetResult(BenchPrefillArgs.Preset, defaultValue = "small")
    let tokens =
        a.TryGetResult BenchPrefillArgs.Visual_Tokens |> Option.map (parseInts "--visual-tokens") |> Option.defaultValue [| 1; 4; 16; 36; 64; 144; 576 |]
    let q = a.GetResult(BenchPrefillArgs.Text_Tokens, defaultValue = 50)
    let r =
        QueCC.Model.Commands.LlavaEntryPoints.BenchmarkPrefill(
            preset, tokens, q, a.GetResult(BenchPrefillArgs.Repeats, defaultValue = 3), a.GetResult(BenchPrefillArgs.Decode_Tokens, defaultValue = 16))
    printfn "quecc bench prefill: preset %s, LLM %s parameters, Q = %d text tokens, %s, %d torch threads" preset (r.LlmParameters.ToString("N0")) q r.Device (TorchSharp.torch.get_num_threads ())
    printfn "%6s %12s %14s %14s %18s" "V" "prefill ms" "model GFLOP" "ms per GFLOP" "measured/model"
    // The paper's cost model says latency ∝ 2·N·(Q+V): normalise by the largest point's ms-per-FLOP.
    let pts = List.ofSeq r.Points
    let reference = pts |> List.maxBy (fun p -> p.ModelFlops)
    let msPerFlop = reference.MeanMilliseconds / reference.ModelFlops
    for p in pts do
        printfn "%6d %12.2f %14.4f %14.3f %18.2f" p.VisualTokens p.MeanMilliseconds (p.ModelFlops / 1e9) (p.MeanMilliseconds / (p.ModelFlops / 1e9)) (p.MeanMilliseconds / (p.ModelFlops * msPerFlop))
    printfn "decode (%d tokens): %.1f tokens/s with KV cache, %.1f tokens/s without" r.DecodeTokens r.DecodeTokensPerSecondCached r.DecodeTokensPerSecondUncached
    0

let runBenchLatency (a: ParseResults<BenchLatencyArgs>) =
    let preset = a.GetResult(BenchLatencyArgs.Preset, defaultValue = "small")
    let vs = a.GetResult BenchLatencyArgs.Visual_Tokens |> parseInts "--visual-tokens"
    let q = a.GetResult BenchLatencyArgs.Text_Tokens
    if q < 1 then inputError "--text-tokens %d: expected at least 1" q
    let decode = a.GetResult(BenchLatencyArgs.Decode_Tokens, defaultValue = 8)
    if decode < 1 then inputError "--decode-tokens %d: expected at least 1" decode
    let repeats = a.GetResult(BenchLatencyArgs.Repeats, defaultValue = 3)
    if repeats < 1 then inputError "--repeats %d: expected at least 1" repeats
    let r = QueCC.Model.Commands.InferenceBenchmarks.Latency(preset, vs, q, decode, repeats)
    let pts = List.ofSeq r.Points
    if a.Contains BenchLatencyArgs.Json then
        Json.obj [ "preset", Json.str r.Preset; "device", Json.str r.Device; "llm_parameters", Json.num (float r.LlmParameters)
                   "weight_bytes", Json.num (float r.WeightBytes); "text_tokens", Json.num (float r.TextTokens)
                   "decode_tokens", Json.num (float r.DecodeTokens); "repeats", Json.num (float r.Repeats)
                   "torch_threads", Json.num (float (TorchSharp.torch.get_num_threads ()))
                   "query_pass_ms", Json.num r.QueryPassMilliseconds; "copy_bytes_per_second", Json.num r.CopyBytesPerSecond
                   "decode_bound_tokens_per_second", Json.num r.DecodeBoundTokensPerSecond
                   "points",
                   Json.arr [ for p in pts ->
                                  Json.obj [ "visual_tokens", Json.num (float p.VisualTokens); "prefill_ms", Json.num p.PrefillMilliseconds
                                             "decode_ms_per_token", Json.num p.DecodeMillisecondsPerToken
                                             "decode_tokens_per_second", Json.num (1000.0 / p.DecodeMillisecondsPerToken)
                                             "kv_cache_bytes", Json.num (float p.KvCacheBytes); "prefill_flops", Json.num p.PrefillFlops ] ] ]
        |> Json.toText
        |> printfn "%s"
    else
        printfn "quecc bench latency: preset %s, LLM %s parameters (%.2f GB of weights), Q = %d, %s, %d torch threads, median of %d"
            r.Preset (r.LlmParameters.ToString("N0")) (float r.WeightBytes / 1e9) q r.Device (TorchSharp.torch.get_num_threads ()) r.Repeats
        let first = List.head pts
        printfn "%6s %12s %14s %14s %14s %12s %12s" "V" "TTFT ms" "ms per token" "tokens/s" "KV-cache MB" "t / t(V0)" "FLOP ratio"
        for p in pts do
            printfn "%6d %12.2f %14.2f %14.2f %14.3f %12.2f %12.2f" p.VisualTokens p.PrefillMilliseconds p.DecodeMillisecondsPerToken
                (1000.0 / p.DecodeMillisecondsPerToken) (float p.KvCacheBytes / 1e6) (p.PrefillMilliseconds / first.PrefillMilliseconds) (p.PrefillFlops / first.PrefillFlops)
        printfn "QueCC query pass (forward over the Q = %d question tokens): %.2f ms" q r.QueryPassMilliseconds
        printfn "copy bandwidth %.2f GB/s (read + write); decode bound = bandwidth / weight bytes = %.2f tokens/s" (r.CopyBytesPerSecond / 1e9) r.DecodeBoundTokensPerSecond
    0

let runBenchEval (a: ParseResults<BenchEvalArgs>) =
    let sizes = a.TryGetResult BenchEvalArgs.Batch_Sizes |> Option.map (parseInts "--batch-sizes") |> Option.defaultValue [| 1; 8; 32 |]
    let n = a.GetResult(BenchEvalArgs.Questions, defaultValue = 64)
    if n < 1 then inputError "--questions %d: expected at least 1" n
    let maxNew = a.GetResult(BenchEvalArgs.Max_New_Tokens, defaultValue = 8)
    if maxNew < 1 then inputError "--max-new-tokens %d: expected at least 1" maxNew
    let r = QueCC.Model.Commands.InferenceBenchmarks.EvalThroughput(a.GetResult(BenchEvalArgs.Preset, defaultValue = "tiny"), sizes, n, maxNew)
    printfn "quecc bench eval: preset %s, %s, %d questions, at most %d new tokens, %d torch threads" r.Preset r.Device n maxNew (TorchSharp.torch.get_num_threads ())
    let pts = List.ofSeq r.Points
    printfn "%8s %10s %14s %12s %14s" "batch" "seconds" "questions/s" "vs first" "answer tokens"
    for p in pts do
        printfn "%8d %10.2f %14.2f %12.2f %14d" p.BatchSize p.Seconds p.QuestionsPerSecond (p.QuestionsPerSecond / (List.head pts).QuestionsPerSecond) p.AnswerTokens
    0

let runBenchTrain (a: ParseResults<BenchTrainArgs>) =
    let stage = a.GetResult(BenchTrainArgs.Stage, defaultValue = StageArg.Finetune) |> stageName
    let r =
        QueCC.Model.Commands.TrainBenchmark.Run(
            a.GetResult(BenchTrainArgs.Preset, defaultValue = "tiny"), a.GetResult(BenchTrainArgs.Steps, defaultValue = 20),
            a.GetResult(BenchTrainArgs.Batch_Size, defaultValue = 8), stage, "cpu", 0, 5, a.GetResult(BenchTrainArgs.Repeats, defaultValue = 3),
            Action<string>(eprintfn "%s"))
    printfn "quecc bench train: preset %s, %s, %s, %d timed steps × batch %d, %d rounds, %d torch threads" r.Preset stage r.Device r.Steps r.BatchSize r.Repeats (TorchSharp.torch.get_num_threads ())
    printfn "%-12s %18s %22s" "" "median samples/s" "best-round mean samples/s"
    printfn "%-12s %18.1f %22.1f" "trainer" r.TrainerSamplesPerSecond r.TrainerMeanSamplesPerSecond
    printfn "%-12s %18.1f %22.1f" "bare loop" r.BareSamplesPerSecond r.BareMeanSamplesPerSecond
    printfn "%-12s %17.1f%% %21.1f%%" "overhead" r.OverheadPercent r.MeanOverheadPercent
    printfn "target: overhead ≤ 5%% (median) — %s" (if r.OverheadPercent <= 5.0 then "met" else "NOT met")
    printfn "peak memory %.0f MB working set, %.0f MB managed heap" (float r.PeakWorkingSetBytes / 1e6) (float r.PeakManagedBytes / 1e6)
    0

let runTokenize (a: ParseResults<TokenizeArgs>) =
    let dir = a.GetResult TokenizeArgs.Tokenizer
    match a.TryGetResult TokenizeArgs.Input, a.TryGetResult TokenizeArgs.Conversations with
    | Some input, None ->
        if a.Contains TokenizeArgs.Template then inputError "tokenize: --template applies to --conversations, not --input"
        QueCC.Model.Commands.TokenizeCommand.Texts(dir, input, not (a.Contains TokenizeArgs.No_Special_Tokens), stdout)
    | None, Some conv ->
        if a.Contains TokenizeArgs.No_Special_Tokens then inputError "tokenize: --no-special-tokens applies to --input, not --conversations"
        match a.TryGetResult TokenizeArgs.Template with
        | Some t -> QueCC.Model.Commands.TokenizeCommand.Conversations(dir, conv, t, stdout)
        | None -> inputError "tokenize --conversations: give --template vicuna_v1, qwen_1_5 or plain"
    | _ -> inputError "tokenize: give exactly one of --input FILE.jsonl or --conversations FILE.json"
    0

/// Messages of the C# library's user errors can span lines (lists of keys); the CLI prints one line.
let private oneLine (s: string) = s.Replace("\r", "").Replace("\n", "; ")

/// Restricted Damerau–Levenshtein distance (adjacent swaps count 1), for "did you mean".
let editDistance (a: string) (b: string) =
    let d = Array2D.zeroCreate (a.Length + 1) (b.Length + 1)
    for i in 0 .. a.Length do d[i, 0] <- i
    for j in 0 .. b.Length do d[0, j] <- j
    for i in 1 .. a.Length do
        for j in 1 .. b.Length do
            let cost = if a[i - 1] = b[j - 1] then 0 else 1
            d[i, j] <- min (min (d[i - 1, j] + 1) (d[i, j - 1] + 1)) (d[i - 1, j - 1] + cost)
            if i > 1 && j > 1 && a[i - 1] = b[j - 2] && a[i - 2] = b[j - 1] then d[i, j] <- min d[i, j] (d[i - 2, j - 2] + 1)
    d[a.Length, b.Length]

/// Argu's error (a message line, then the whole usage) as one line: the message, the nearest command or flag
/// when the word is unknown, and where the usage is. Commands and flags are read from Argu's own usage text.
let usageErrorLine (argv: string[]) (message: string) =
    let lines = message.Replace("\r", "").Split('\n')
    let usageText = String.Join("\n", lines |> Array.skip 1)
    let first = lines[0].Replace("ERROR: ", "").TrimEnd('.')
    let usage = lines |> Array.tryFind (fun l -> l.StartsWith "USAGE: ")
    let program =
        match usage with
        | Some u ->
            let m = Text.RegularExpressions.Regex.Match(u, @"^USAGE: (.+?)(?= \[| --|$)")
            if m.Success then m.Groups[1].Value.Trim() else "quecc"
        | None ->
            // Argu gives no usage line for a missing flag: name the command from the arguments.
            "quecc" :: (argv |> Array.truncate 2 |> Array.takeWhile (fun w -> Text.RegularExpressions.Regex.IsMatch(w, "^[a-z][a-z-]*$")) |> List.ofArray) |> String.concat " "
    let unknown = Text.RegularExpressions.Regex.Match(first, "^unrecognized argument: '(.+)'$")
    let suggestion =
        if not unknown.Success then ""
        else
            let word = unknown.Groups[1].Value
            let candidates =
                if word.StartsWith "-" then
                    Text.RegularExpressions.Regex.Matches(usageText, @"(?<![\w-])--?[A-Za-z0-9][A-Za-z0-9-]*") |> Seq.map (fun m -> m.Value) |> Seq.filter (fun f -> f <> "--help") |> Seq.distinct |> List.ofSeq
                else
                    lines |> Array.choose (fun l -> let m = Text.RegularExpressions.Regex.Match(l, @"^    ([a-z][a-z0-9-]*) <options>") in if m.Success then Some m.Groups[1].Value else None) |> List.ofArray
            let scored = candidates |> List.map (fun c -> c, editDistance word c) |> List.sortBy snd
            match scored with
            | (best, d) :: _ when d <= max 2 (word.Length / 3) -> sprintf "; did you mean '%s'?" best
            | _ when not (word.StartsWith "-") && not candidates.IsEmpty -> sprintf "; expected one of %s" (String.Join(", ", candidates))
            | _ -> ""
    sprintf "%s: %s%s (%s --help for usage)" program first suggestion program

let run (argv: string[]) =
    let parser = ArgumentParser.Create<QueccArgs>(programName = "quecc")
    try
        let results = parser.ParseCommandLine(argv, raiseOnUsage = true)
        match results.GetSubCommand() with
        | Fit a -> runFit a
        | Frontier a -> runFrontier a
        | Reproduce a -> runReproduce a
        | Compress a -> runCompress a
        | Describe a -> runDescribe a
        | Init_Model a -> runInitModel a
        | Generate a -> runGenerate a
        | Make_Data a -> runMakeData a
        | Train a -> runTrain a
        | Sweep a -> runSweep a
        | Plot_Metrics a -> runPlotMetrics a
        | Eval a -> runEval a
        | Score a -> runScore a
        | Tokenize a -> runTokenize a
        | Pretrain_Vision a -> runPretrainVision a
        | Bench b ->
            match b.GetSubCommand() with
            | BenchArgs.Fit a -> runBenchFit a
            | BenchArgs.Compress a -> runBenchCompress a
            | BenchArgs.Latency a -> runBenchLatency a
            | BenchArgs.Eval a -> runBenchEval a
            | BenchArgs.Prefill a -> runBenchPrefill a
            | BenchArgs.Train a -> runBenchTrain a
    with
    | :? ArguParseException as e ->
        let isHelp = e.ErrorCode = ErrorCode.HelpText
        if isHelp then stdout.WriteLine e.Message else stderr.WriteLine(usageErrorLine argv e.Message)
        if isHelp then 0 else 2
    // The one user-error type (raised by the C# library and by this project alike). Anything else is a bug and
    // must crash with its stack trace rather than be shown as if the user had erred.
    | :? QueCC.Model.UserInputException as e ->
        eprintfn "quecc: %s" (oneLine e.Message)
        1
