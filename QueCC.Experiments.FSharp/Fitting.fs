module QueCC.Experiments.Fitting
