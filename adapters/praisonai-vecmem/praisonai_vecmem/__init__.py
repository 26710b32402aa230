"""vecmem as PraisonAI's persistence: conversation, knowledge and state stores that PraisonAI's
own registries create by the name ``vecmem`` (entry-point groups ``praisonai.conversation_stores``,
``praisonai.knowledge_stores``, ``praisonai.state_stores``), so ``create_conversation_store(
"vecmem", url="postgresql://...")`` and a ``PersistenceOrchestrator`` built from them keep an
agent's sessions, knowledge and state in vecmem.

PraisonAI's registry calls the entry point's object and then the factory it returns with
``url=`` and the options, so each entry point below returns the store class.
"""

from __future__ import annotations

from praisonai_vecmem.conversation import UnsupportedByVecmem, VecmemConversationStore
from praisonai_vecmem.knowledge import VecmemKnowledgeStore
from praisonai_vecmem.state import VecmemKeyValueStore

__all__ = [
    "UnsupportedByVecmem",
    "VecmemConversationStore",
    "VecmemKeyValueStore",
    "VecmemKnowledgeStore",
    "conversation_store",
    "knowledge_store",
    "state_store",
]


def conversation_store() -> type[VecmemConversationStore]:
    return VecmemConversationStore


def knowledge_store() -> type[VecmemKnowledgeStore]:
    return VecmemKnowledgeStore


def state_store() -> type[VecmemKeyValueStore]:
    return VecmemKeyValueStore
