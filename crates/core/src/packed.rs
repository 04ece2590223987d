//! API messages kept in their protobuf encoding: a fraction of the memory of the decoded message
//! (no per-field allocations, no map tables), decoded in microseconds when read. The watch caches
//! keep every object's answer this way.

use std::fmt;
use std::marker::PhantomData;

use prost::Message;

/// A message of type `M`, encoded.
pub struct Packed<M> {
    bytes: Box<[u8]>,
    message: PhantomData<fn() -> M>,
}

impl<M: Message + Default> Packed<M> {
    pub fn pack(message: &M) -> Self {
        Self {
            bytes: message.encode_to_vec().into_boxed_slice(),
            message: PhantomData,
        }
    }

    /// The message back. Bytes that this type encoded always decode; were they ever not to,
    /// the answer is the empty message rather than a crash.
    pub fn unpack(&self) -> M {
        M::decode(&self.bytes[..]).unwrap_or_default()
    }

    /// The size of the encoding.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

impl<M> Clone for Packed<M> {
    fn clone(&self) -> Self {
        Self {
            bytes: self.bytes.clone(),
            message: PhantomData,
        }
    }
}

impl<M> PartialEq for Packed<M> {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}

impl<M> fmt::Debug for Packed<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Packed({} bytes)", self.bytes.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kuberay_api::proto;
    use std::collections::BTreeMap;

    #[test]
    fn a_message_comes_back_as_it_was_packed() {
        let cluster = proto::Cluster {
            name: "c".into(),
            namespace: "ns".into(),
            annotations: BTreeMap::from([("a".into(), "1".into()), ("b".into(), "2".into())]),
            cluster_spec: Some(proto::ClusterSpec {
                head_group_spec: Some(proto::HeadGroupSpec {
                    compute_template: "t".into(),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        let packed = Packed::pack(&cluster);
        assert_eq!(packed.unpack(), cluster);
        assert!(packed.len() < 64, "{packed:?}");
        assert_eq!(
            Packed::pack(&proto::Cluster::default()).unpack(),
            proto::Cluster::default()
        );
    }
}
