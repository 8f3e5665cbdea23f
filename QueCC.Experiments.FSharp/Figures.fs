module QueCC.Experiments.Figures
