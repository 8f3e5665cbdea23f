/// The `quecc` command line's grammar: one Argu union per command, with its usage text.
module QueCC.Experiments.CliArgs

open Argu

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
    | Feature_Cache_Mb of mib: int
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
            | Feature_Cache_Mb _ -> "MiB for keeping each image's frozen-tower features after its first visit; 0 = encode at every visit (default 2048)."
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
    | Query_Rule of rule: string

    interface IArgParserTemplate with
        member a.Usage =
            match a with
            | Query_Rule _ -> "with --conversations: where the QueCC query ends, first_user_turn (default, what training uses) or authors_fork (the fork's llava_arch.py rule)."
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
