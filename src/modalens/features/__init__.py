"""Feature engine: sparse multimodal features of embedding models, their modality dominance, interpretability and
interventions (after Yan et al., 2025). See docs/features.md."""

from modalens.features.compare import compare_runs, load_run_features, load_runs, match_features
from modalens.features.config import FeatureStudyConfig
from modalens.features.dashboard import feature_examples, feature_labels
from modalens.features.interventions import (
    ablate_features,
    concept_removal,
    feature_attack,
    group_ablation,
    retrieval_recall,
    steer,
    steer_text,
    steering_retrieval,
    zero_shot_accuracy,
)
from modalens.features.mds import DominanceResult, analyze_dominance, analyze_mds, modality_dominance_score
from modalens.features.metrics import compare_methods, emb_sim, monosemanticity, top_activating, win_rate
from modalens.features.ncl import NCLConfig, NCLHead, train_ncl
from modalens.features.sae import (
    FeatureExtractor,
    ReLUSAE,
    ReLUSAEConfig,
    TopKSAE,
    TopKSAEConfig,
    evaluate_extractor,
    get_extractor,
    list_extractors,
    load_extractor,
    register_extractor,
    train_extractor,
    train_sae,
)
from modalens.features.study import (
    FeatureStudy,
    load_feature_study,
    run_feature_study,
)

__all__ = [
    "DominanceResult",
    "FeatureExtractor",
    "FeatureStudy",
    "FeatureStudyConfig",
    "NCLConfig",
    "NCLHead",
    "ReLUSAE",
    "ReLUSAEConfig",
    "TopKSAE",
    "TopKSAEConfig",
    "ablate_features",
    "analyze_dominance",
    "analyze_mds",
    "compare_methods",
    "compare_runs",
    "concept_removal",
    "emb_sim",
    "evaluate_extractor",
    "feature_attack",
    "feature_examples",
    "feature_labels",
    "get_extractor",
    "group_ablation",
    "list_extractors",
    "load_extractor",
    "load_feature_study",
    "load_run_features",
    "load_runs",
    "match_features",
    "modality_dominance_score",
    "monosemanticity",
    "register_extractor",
    "retrieval_recall",
    "run_feature_study",
    "steer",
    "steer_text",
    "steering_retrieval",
    "top_activating",
    "train_extractor",
    "train_ncl",
    "train_sae",
    "win_rate",
    "zero_shot_accuracy",
]
