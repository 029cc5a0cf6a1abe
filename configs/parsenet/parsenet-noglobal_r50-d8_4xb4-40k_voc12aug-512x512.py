# Ablation: the same head without the global-context branch (FCN-style).
_base_ = './parsenet_r50-d8_4xb4-40k_voc12aug-512x512.py'
model = dict(decode_head=dict(use_global=False))
