# Late fusion: one classifier per branch (conv5, global), scores summed. With
# no projection conv this is the same function as early fusion, so it adds a
# 512-channel projection per branch.
_base_ = './parsenet_r50-d8_4xb4-20k_voc12aug-512x512.py'
model = dict(decode_head=dict(fusion='late', channels=512))
