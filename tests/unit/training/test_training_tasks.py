import math

import pytest
import torch
from omegaconf import OmegaConf

from tubelab import config
from tubelab.models.batchnorm import global_batchnorm
from tubelab.training import tasks
from tubelab.training.finetune import lr_at, make_optimizer


def test_single_label_targets_loss_and_video_scores():
    batch = {"label": torch.tensor([3, 5])}
    class_map = torch.tensor([-1, -1, -1, 0, -1, 1])  # a class subset {3, 5} -> {0, 1}
    assert tasks.targets("single_label", batch, torch.device("cpu"), class_map).tolist() == [0, 1]
    out = torch.tensor([[[2.0, 0.0], [0.0, 1.0]], [[0.0, 3.0], [0.0, 3.0]]])  # 2 videos x 2 clips
    pred = tasks.video_outputs("single_label", out)
    assert torch.allclose(pred.sum(1), torch.ones(2))
    assert tasks.scores("single_label", pred, torch.tensor([0, 1]), 2) == {"top1": 100.0, "mean_class_accuracy": 100.0}
    assert tasks.loss("single_label", out[:, 0], torch.tensor([0, 1])).item() > 0


def test_multi_label_and_count():
    hot = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert torch.equal(tasks.targets("multi_label", {"multi_hot": hot}, torch.device("cpu")), hot)
    out = torch.tensor([[[5.0, -5.0]], [[-5.0, 5.0]]])
    assert tasks.scores("multi_label", tasks.video_outputs("multi_label", out), hot, 2) == {"map": 100.0}
    counts = torch.tensor([[[4.0], [6.0]], [[2.0], [2.0]]])
    pred = tasks.video_outputs("count", counts)
    assert pred.tolist() == [5.0, 2.0]
    s = tasks.scores("count", pred, torch.tensor([5.0, 4.0]), 0)
    assert s["repetition_error"] == pytest.approx((0 + 0.5) / 2) and s["obo"] == 50.0
    assert tasks.head_size("count", 99) == 1 and tasks.head_size("multi_label", 7) == 7


def test_max_aggregation_takes_each_class_from_its_most_confident_view():
    """SEVERE's Charades test (`ENSEMBLE_METHOD: max`): per class, the highest probability over a video's views."""
    out = torch.tensor([[[2.0, -1.0], [-3.0, 0.5], [0.0, 0.0]]])  # 1 video x 3 views x 2 classes
    expected = [max(1 / (1 + math.exp(-v[c])) for v in out[0].tolist()) for c in range(2)]
    assert tasks.video_outputs("multi_label", out, "max")[0].tolist() == pytest.approx(expected)
    assert tasks.video_outputs("multi_label", out, "mean")[0].tolist() == pytest.approx(
        [sum(1 / (1 + math.exp(-v[c])) for v in out[0].tolist()) / 3 for c in range(2)])
    with pytest.raises(ValueError, match="setting.clip.aggregate='median' is not valid"):
        tasks.video_outputs("multi_label", out, "median")


def test_head_dropout_is_a_module_without_weights():
    from tubelab.models import build_model

    net = build_model(config.load("finetune").model, num_classes=3)
    keys = set(net.state_dict())
    net.dropout.p = 0.5
    assert set(net.state_dict()) == keys and not any(k.startswith("dropout") for k in keys)
    net.train()
    x = torch.randn(4, 3, 8, 32, 32)
    assert not torch.equal(net(x), net(x))  # dropped differently per call in train mode
    net.eval()
    assert torch.equal(net(x), net(x))


def test_metric_direction_and_checks():
    assert tasks.better("repetition_error", 0.1, 0.2) and not tasks.better("top1", 10, 20)
    assert tasks.better("map", 1.0, None)
    with pytest.raises(ValueError, match="does not fit a count dataset; choose one of: repetition_error, obo"):
        tasks.check("count", "top1")


def test_schedules_match_the_reference_recipes():
    ucf = config.load("finetune", ["setting=ucf101"]).setting  # Adam 1e-4, x0.3 at 6, 10, 14
    assert [lr_at(ucf, e) for e in (0, 5, 6, 10, 14)] == pytest.approx([1e-4, 1e-4, 3e-5, 9e-6, 2.7e-6])
    ch = config.load("finetune", ["setting=charades"]).setting  # SGD 0.0375, 4 warm-up epochs, x0.1 at 41, 49
    # SlowFast's warm-up: per step (fractional epochs), linear from WARMUP_START_LR 1e-4 to 0.0375 at epoch 4
    assert [lr_at(ch, e) for e in (0, 0.5, 1, 2, 3.99, 4)] == pytest.approx(
        [1e-4, 0.004775, 0.00945, 0.0188, 0.0374065, 0.0375])
    per_epoch = config.load("finetune", ["setting=charades", "setting.schedule.warmup_start_lr=null"]).setting
    assert [lr_at(per_epoch, e) for e in (0, 0.5, 1, 3.5)] == pytest.approx([0.0375 / 5, 0.0375 / 5, 0.015, 0.03])
    assert lr_at(ch, 41) == pytest.approx(0.00375) and lr_at(ch, 49) == pytest.approx(0.000375)
    with pytest.raises(ValueError, match="choose one of: adam, sgd"):
        make_optimizer(OmegaConf.merge(ch.optimizer, {"name": "lamb"}), torch.nn.Linear(2, 2))


def test_charades_optimiser_is_slowfasts_sgd():
    """SlowFast's construct_optimizer as SEVERE's Charades runs it: Nesterov SGD, and the BN layers' parameters
    in their own group without weight decay (BN.WEIGHT_DECAY 0), global BN layers too; the other settings: one group."""
    net = torch.nn.Sequential(torch.nn.Conv3d(3, 4, 1), torch.nn.BatchNorm3d(4), torch.nn.Linear(4, 2))
    net = global_batchnorm(net, torch.device("cpu"))  # setting.batchnorm=global, the default
    net[2].weight.requires_grad = False  # frozen parameters stay out (the linear protocol freezes the backbone)
    opt = make_optimizer(config.load("finetune", ["setting=charades"]).setting.optimizer, net)
    assert isinstance(opt, torch.optim.SGD) and opt.defaults["momentum"] == 0.9 and opt.defaults["nesterov"]
    other, bn = opt.param_groups
    assert [id(p) for p in other["params"]] == [id(net[0].weight), id(net[0].bias), id(net[2].bias)]
    assert other["weight_decay"] == 1e-4
    assert [id(p) for p in bn["params"]] == [id(net[1].weight), id(net[1].bias)] and bn["weight_decay"] == 0.0
    (one,) = make_optimizer(config.load("finetune", ["setting=charades", "setting.optimizer.bn_weight_decay=null"])
                            .setting.optimizer, net).param_groups
    assert len(one["params"]) == 5 and one["weight_decay"] == 1e-4
    ucf = make_optimizer(config.load("finetune", ["setting=ucf101"]).setting.optimizer, net)
    assert isinstance(ucf, torch.optim.Adam) and len(ucf.param_groups) == 1


@pytest.mark.parametrize("setting,epochs,milestones,budget", [
    ("ssv2", 22, [12, 17, 20], None), ("ucf_1000", 18, [8, 13, 16], 1000), ("gym_1000", 18, [8, 13, 16], 1000),
    ("fx_s1", 18, [7, 12, 16], None), ("ub_s1", 18, [7, 12, 16], None), ("gym99", 16, [6, 10, 14], None),
])
def test_severe_settings_follow_severe_md(setting, epochs, milestones, budget):
    s = config.load("finetune", [f"setting={setting}"]).setting
    assert (s.epochs, list(s.schedule.milestones), s.budget) == (epochs, milestones, budget)
    assert (s.clip.frames, s.clip.crop, s.clip.eval_clips) == (32, 112, 10)
    assert s.val_fraction > 0 and s.eval_split != s.train_split and math.isclose(s.optimizer.lr, 1e-4)
